//! The one place daemon errors become gRPC statuses.

use tonic::Status;

use crate::error::Error;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = tidy(&error.to_string());
        match error {
            Error::NotFound(_) => Status::not_found(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::InvalidArgument(_) => Status::invalid_argument(message),
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::Aborted(_) => Status::aborted(message),
            Error::Internal(_) | Error::Storage(_) | Error::Db(_) => {
                tracing::error!("{message}");
                Status::internal(message)
            }
        }
    }
}

/// std's io errors read "No space left on device (os error 28)"; the API's messages are
/// lower case and say no more than the error: "no space left on device".
fn tidy(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (os error ") {
        let tail = &rest[at + " (os error ".len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || !tail[digits..].starts_with(')') {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
            continue;
        }
        let before = &rest[..at];
        let start = before.rfind(": ").map_or(0, |i| i + 2);
        out.push_str(&before[..start]);
        let mut chars = before[start..].chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_lowercase());
            out.push_str(chars.as_str());
        }
        rest = &tail[digits + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_the_rest() {
        assert_eq!(
            tidy("rename c to d: write /x/etc/hostname: No space left on device (os error 28)"),
            "rename c to d: write /x/etc/hostname: no space left on device"
        );
        assert_eq!(
            tidy("a: Permission denied (os error 13); b: Device or resource busy (os error 16)"),
            "a: permission denied; b: device or resource busy"
        );
        assert_eq!(tidy("Is a directory (os error 21)"), "is a directory");
        assert_eq!(tidy("nothing to do (os error x)"), "nothing to do (os error x)");
        assert_eq!(tidy("container c1 not found"), "container c1 not found");
    }

    #[test]
    fn statuses_carry_tidy_messages() {
        let io = std::io::Error::from_raw_os_error(28);
        let status = Status::from(Error::internal("write /x", io));
        assert_eq!(status.message(), "write /x: no space left on device");
        assert_eq!(status.code(), tonic::Code::Internal);
    }
}
