//! Whether the container tests can run here (shared with the loadgen
//! crate's tests, which include this file).

/// Whether a Docker engine answers here; if not, says the container tests
/// are skipped (never silently).
pub fn docker_engine_answers() -> bool {
    let answers = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !answers {
        eprintln!(
            "skipped: no Docker engine answers (`docker info` failed); container tests need one"
        );
    }
    answers
}
