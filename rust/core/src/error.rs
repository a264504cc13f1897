//! Errors of the core: invalid inputs name the parameter and what is accepted.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// A bad argument: `param` is the user-facing parameter name.
    Invalid { param: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid { param: param.into(), message: message.into() }
    }

    /// What is wrong, without the parameter name.
    pub fn message(&self) -> &str {
        match self {
            Error::Invalid { message, .. } => message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { param, message } => write!(f, "{param}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Checks shared by the constructors and the run configuration.
pub mod check {
    use super::{Error, Result};

    pub fn positive(param: &str, x: f64) -> Result<f64> {
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(Error::invalid(param, format!("must be a positive finite number (got {x})")))
        }
    }

    pub fn non_negative(param: &str, x: f64) -> Result<f64> {
        if x.is_finite() && x >= 0.0 {
            Ok(x)
        } else {
            Err(Error::invalid(param, format!("must be a finite number >= 0 (got {x})")))
        }
    }

    pub fn finite(param: &str, xs: &[f64]) -> Result<()> {
        match xs.iter().position(|x| !x.is_finite()) {
            None => Ok(()),
            Some(i) => Err(Error::invalid(
                param,
                format!("must contain only finite numbers (entry {i} is {})", xs[i]),
            )),
        }
    }

    pub fn count(param: &str, k: usize, max: usize) -> Result<usize> {
        if k == 0 {
            Err(Error::invalid(param, "must be at least 1 (got 0)"))
        } else if k > max {
            Err(Error::invalid(param, format!("must be at most {max} (got {k})")))
        } else {
            Ok(k)
        }
    }

    pub fn len(param: &str, got: usize, expected: usize, what: &str) -> Result<()> {
        if got == expected {
            Ok(())
        } else {
            Err(Error::invalid(param, format!("must have {what} = {expected} entries (got {got})")))
        }
    }
}
