//! Wall-clock time as the records and directory names write it.

use std::time::SystemTime;

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `2026-12-01-20-12-27`: a time as the start of a directory name.
pub fn dir_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace([':', 'T'], "-")
        .replace('Z', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stamp_names_a_directory() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_155_947);
        assert_eq!(dir_stamp(t), "2026-12-01-20-12-27");
        assert_eq!(unix_seconds(t), 1_796_155_947.0);
    }
}
