//! Samples, and one side's series of them.

use anyhow::Result;

#[derive(Clone, Debug)]
pub struct Sample {
    pub value: f64,
    /// E.g. systemd's state when it counted as up.
    pub note: Option<String>,
}

impl Sample {
    pub fn plain(value: f64) -> Self {
        Self { value, note: None }
    }
}

/// One side's samples of one figure, in run order; or, once a run failed, why.
#[derive(Clone, Debug)]
pub struct Series<T = Sample> {
    pub samples: Vec<T>,
    pub failure: Option<String>,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Self {
            samples: Vec::new(),
            failure: None,
        }
    }
}

impl<T> Series<T> {
    pub fn failed(reason: String) -> Self {
        Self {
            samples: Vec::new(),
            failure: Some(reason),
        }
    }

    /// One more sample, unless this side has failed already.
    pub fn measure(&mut self, side: &str, sample: impl FnOnce() -> Result<T>) {
        if self.failure.is_some() {
            return;
        }
        match sample() {
            Ok(value) => self.samples.push(value),
            Err(err) => {
                eprintln!("  {side} failed: {err:#}");
                self.failure = Some(format!("run {}: {err:#}", self.samples.len() + 1));
            }
        }
    }
}

impl Series<(Sample, Sample)> {
    pub fn split(self) -> (Series, Series) {
        let (first, second) = self.samples.into_iter().unzip();
        let series = |samples| Series {
            samples,
            failure: self.failure.clone(),
        };
        (series(first), series(second))
    }
}

impl Series {
    pub fn median(&self) -> Option<f64> {
        median(&self.samples.iter().map(|s| s.value).collect::<Vec<_>>())
    }
}

pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}
