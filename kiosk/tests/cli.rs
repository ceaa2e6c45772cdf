//! The `kiosk` command line as an operator meets it.

use std::process::Command;

fn kiosk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiosk"))
}

#[test]
fn help_lists_every_command() {
    let out = kiosk().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["init", "serve", "demo", "hash-password", "enroll", "rotate-credential"] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
    }
    for sub in ["init", "serve", "demo", "enroll", "rotate-credential"] {
        assert!(kiosk().args([sub, "--help"]).output().unwrap().status.success(), "{sub} --help");
    }
}

#[test]
fn serve_without_init_explains_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = kiosk()
        .args(["serve", "--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kiosk init"), "{err}");
}

#[test]
fn init_refuses_bad_input_and_a_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.toml");
    std::fs::write(
        &roster,
        "[[staff]]\nid = \"198503122010011002\"\nname = \"Rina\"\nrole = \"staff\"\npassword = \"rahasia-123\"\n",
    )
    .unwrap();
    let init = |kelurahan: &str, code: &str| {
        kiosk()
            .args(["init", "--kelurahan", kelurahan, "--kiosk-code", code, "--data"])
            .arg(dir.path().join("k"))
            .arg("--roster")
            .arg(&roster)
            .output()
            .unwrap()
    };
    assert!(!init("12.71.01", "K07").status.success(), "bad kelurahan code accepted");
    assert!(!init("12.71.01.1001", "k7!").status.success(), "bad kiosk code accepted");
    assert!(init("12.71.01.1001", "K07").status.success());
    let again = init("12.71.01.1001", "K07");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));
}

#[test]
fn hash_password_prints_an_argon2id_hash() {
    use std::io::Write;
    let mut child = kiosk()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"rahasia-123\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("$argon2id$v=19$"));
}
