// Records the commit this binary is built from (`--version`, backups,
// `/livez`): `LOKET_COMMIT` from the environment if set (a package built
// from a source tarball), else `git rev-parse`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LOKET_COMMIT");
    let commit = std::env::var("LOKET_COMMIT").ok().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| {
        // Rebuild when HEAD moves: the branch file, or HEAD itself (paths
        // relative to the crate being built, one level below the workspace).
        for path in ["../.git/HEAD", "../.git/refs/heads"] {
            if std::path::Path::new(path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    println!("cargo:rustc-env=LOKET_COMMIT={commit}");
}
