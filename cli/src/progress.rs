//! Progress on stderr: of `create` and `launch`, a spinner for people and plain lines for
//! logs; of `export` and `import`, a byte count for people and nothing for logs.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Stages are logged as they begin, so a terminal shows the same lines as a log file,
/// and the spinner below them says what is going on right now.
pub struct Progress {
    spinner: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        let spinner = io::stderr().is_terminal().then(|| {
            let spinner = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("the spinner template is valid"),
            );
            spinner.enable_steady_tick(Duration::from_millis(100));
            spinner
        });
        Self { spinner }
    }

    pub fn stage(&self, stage: String) {
        let line = format!("==> {stage}");
        match &self.spinner {
            Some(spinner) => {
                spinner.println(line);
                spinner.set_message(stage);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn template_output(&self, line: &str) {
        match &self.spinner {
            Some(spinner) => spinner.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Clears the spinner however create ends, so a result or an error starts on a clean line.
impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// Bytes moved by `export` or `import`: a spinner with the count until the total is known,
/// a bar after. Only on a terminal: run from cron, a job that went well says nothing.
pub struct Transfer {
    bar: Option<ProgressBar>,
}

impl Transfer {
    pub fn new(message: String) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::no_length()
                .with_style(
                    ProgressStyle::with_template("{spinner} {msg} {bytes} ({elapsed})")
                        .expect("the counting template is valid"),
                )
                .with_message(message);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar }
    }

    /// 0 is "unknown", and keeps the spinner.
    pub fn set_total(&self, bytes: u64) {
        if let Some(bar) = &self.bar
            && bytes > 0
        {
            bar.set_length(bytes);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({elapsed}, ETA {eta})")
                    .expect("the bar template is valid")
                    .progress_chars("=> "),
            );
        }
    }

    pub fn set_position(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }

    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// `advance` for another thread.
    pub fn advancer(&self) -> impl Fn(u64) + Send + 'static {
        let bar = self.bar.clone();
        move |bytes| {
            if let Some(bar) = &bar {
                bar.inc(bytes);
            }
        }
    }
}

/// Clears the bar however the transfer ends, so an error starts on a clean line.
impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
