//! The one formatter of an error with its causes, used wherever an error is shown to a person or
//! logged: `message: cause: cause`, each cause once even when a message already quotes its source.

use std::error::Error;
use std::fmt;

/// Displays an error and its chain of causes joined by `: `. A cause whose text the message before
/// it already ends with is not repeated.
#[derive(Clone, Copy, Debug)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = cause.source();
        }
        Ok(())
    }
}

/// The error and its causes as one line.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    Chain(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("invalid image: {0}")]
    struct Quoting(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot ingest photo.jpg")]
    struct Outer(#[source] Quoting);

    #[derive(Debug, thiserror::Error)]
    #[error("the image is empty")]
    struct Inner;

    #[test]
    fn every_cause_is_shown_once() {
        assert_eq!(
            chain(&Outer(Quoting(Inner))),
            "cannot ingest photo.jpg: invalid image: the image is empty"
        );
    }
}
