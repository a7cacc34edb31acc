//! `hearth generate-config` and the global `--config` flag, as users run them. That the
//! printed file holds exactly the defaults is checked by the config module's own tests.

use assert_cmd::Command;

fn hearth() -> Command {
    let mut command = Command::cargo_bin("hearth").expect("hearth binary is built");
    command.env_remove("CONFIG_FILE");
    command
}

fn generated() -> String {
    let output = hearth().arg("generate-config").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn prints_a_commented_config_with_every_section() {
    let text = generated();
    assert!(text.starts_with("# "), "{text}");
    for section in [
        "\nlog:\n",
        "\nrunner:\n",
        "\ncache:\n",
        "\ncontainer:\n",
        "\nhost:\n",
    ] {
        assert!(text.contains(section), "{section:?} missing");
    }
    assert!(text.contains("  capacity: 1\n"));
    assert!(text.contains("  timeout: 3h\n"));
}

#[test]
fn config_flag_is_global_and_read_from_config_file() {
    let expected = generated();
    for args in [
        &["-c", "some.yaml", "generate-config"][..],
        &["--config", "some.yaml", "generate-config"],
        &["generate-config", "--config=some.yaml"],
    ] {
        hearth()
            .args(args)
            .assert()
            .success()
            .stdout(expected.clone());
    }
    hearth()
        .env("CONFIG_FILE", "from-env.yaml")
        .arg("generate-config")
        .assert()
        .success()
        .stdout(expected);
}

#[test]
fn help_mentions_the_subcommand_and_flag() {
    let output = hearth().arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("generate-config"), "{help}");
    assert!(help.contains("-c, --config <FILE>"), "{help}");
}
