//! Progress bars (indicatif) for the long steps. They draw on stderr and
//! hide themselves when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    hidden: bool,
}

impl Progress {
    /// Bars on stderr.
    pub fn stderr() -> Progress {
        Progress { hidden: false }
    }

    /// No output (tests, `--quiet`).
    pub fn hidden() -> Progress {
        Progress { hidden: true }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }

    pub fn bar(&self, len: u64, message: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg:40!} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar
    }

    pub fn spinner(&self, message: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} ({elapsed})")
                .expect("valid template"),
        );
        bar.set_message(message.to_string());
        bar
    }
}
