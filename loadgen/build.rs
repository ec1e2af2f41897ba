//! Stamps the binary with the commit it was built from (`git describe`),
//! so a run record names the build that measured it, not the checkout it
//! happened to run in.

fn main() {
    let described = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TIERLAB_BUILD={described}");
    for watched in ["../.git/HEAD", "../.git/index", "../.git/refs"] {
        println!("cargo:rerun-if-changed={watched}");
    }
}
