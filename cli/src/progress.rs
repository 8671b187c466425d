//! Progress of `create` and `launch` on stderr: a spinner for people, plain lines for logs.

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
