//! Progress bars with ETA for anything that runs longer than a few seconds.
//! indicatif draws nothing when stderr is not a terminal, so CI logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` steps labelled `what`, showing rate, elapsed time and ETA.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({per_sec}, {elapsed} elapsed, ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(what.to_string());
    pb
}
