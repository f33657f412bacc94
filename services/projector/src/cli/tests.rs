//! The command line: well-formed, bad values named, defaults as the README says.

use super::*;
use clap::CommandFactory;

#[test]
fn the_cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn bad_values_say_which_option_and_why() {
    let err = Cli::try_parse_from(["projector", "serve", "--max-staleness", "soon"]).unwrap_err().to_string();
    assert!(err.contains("--max-staleness") && err.contains("write durations like"), "{err}");
    let cli = Cli::try_parse_from(["projector", "serve", "-X", "a=1", "-X", "hunter2"]).unwrap();
    let Some(Command::Serve(serve)) = cli.command else { panic!() };
    let err = serve.kafka.config().unwrap_err().to_string();
    assert!(err.contains("number 2") && err.contains("is not KEY=VALUE"), "{err}");
    let err = Cli::try_parse_from(["projector", "serve", "--lag-policy", "maybe"]).unwrap_err().to_string();
    assert!(err.contains("--lag-policy"), "{err}");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = std::env::temp_dir().join(format!("projector-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (options, url) = (dir.join("kafka.properties"), dir.join("database-url"));
    std::fs::write(&options, "# SASL\nsasl.password = hunter2\n\nsasl.username=projector\n").unwrap();
    std::fs::write(&url, "postgres://app:hunter2@db/app\n").unwrap();
    let cli = Cli::try_parse_from([
        "projector".as_ref(),
        "serve".as_ref(),
        "--librdkafka-file".as_ref(),
        options.as_os_str(),
        "-X".as_ref(),
        "sasl.username=other".as_ref(),
        "--database-url-file".as_ref(),
        url.as_os_str(),
    ])
    .unwrap();
    let Some(Command::Serve(serve)) = cli.command else { panic!() };
    let config = serve.embed_config().unwrap();
    assert_eq!(config.kafka.librdkafka_options.get("sasl.password").map(String::as_str), Some("hunter2"));
    assert_eq!(config.kafka.librdkafka_options.get("sasl.username").map(String::as_str), Some("other"));
    assert_eq!(config.postgres.unwrap().url, "postgres://app:hunter2@db/app");
    std::fs::write(&options, "no equals sign\n").unwrap();
    let err = serve.kafka.config().unwrap_err().to_string();
    assert!(err.ends_with("kafka.properties, line 1: not KEY=VALUE"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn librdkafka_options_pass_through() {
    let cli = Cli::try_parse_from(["projector", "serve", "-X", "fetch.wait.max.ms=50", "-X", "client.rack=a"]).unwrap();
    let Some(Command::Serve(serve)) = cli.command else { panic!() };
    let config = serve.kafka.config().unwrap();
    assert_eq!(config.librdkafka_options.get("fetch.wait.max.ms").map(String::as_str), Some("50"));
    assert_eq!(config.librdkafka_options.len(), 2);
}

/// The README's configuration table says what `--help` says: every flag
/// of `projector serve` is in it, with the default the code uses.
#[test]
fn the_readme_table_states_the_defaults_the_code_uses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let mut documented = Vec::new();
    for row in readme.lines().filter(|l| l.starts_with("| `--") || l.starts_with("| `-X")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (flags, default) = (cells[1], cells[3]);
        let names: Vec<&str> =
            flags.split('`').filter_map(|f| f.strip_prefix("--")).map(|f| f.split(' ').next().unwrap()).collect();
        let names = if flags.starts_with("`-X") { vec!["librdkafka"] } else { names };
        let defaults: Vec<&str> = default.split(" / ").map(|d| d.trim_matches('`')).collect();
        for (i, name) in names.iter().enumerate() {
            let arg = serve
                .get_arguments()
                .chain(cli.get_arguments())
                .find(|a| a.get_long() == Some(*name))
                .unwrap_or_else(|| panic!("README documents --{name}, which `projector serve` does not have"));
            let code: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            let readme_default = defaults.get(i).copied().unwrap_or(defaults[0]);
            if default.starts_with('`') {
                assert_eq!(code, vec![readme_default.to_owned()], "README's default of --{name}");
            } else {
                // none / off / half of max / —: no default value, or a switch that is off.
                assert!(code.is_empty() || code == ["false"], "--{name} has a default {code:?}; README says {default}");
            }
            documented.push(name.to_string());
        }
    }
    for arg in serve.get_arguments().chain(cli.get_arguments()) {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version"].contains(&long) {
            continue;
        }
        assert!(documented.iter().any(|d| d == long), "--{long} is missing from README's configuration table");
    }
}

#[test]
fn librdkafka_values_are_never_shown_by_help_or_errors() {
    let help = {
        let mut command = Cli::command();
        let serve = command.find_subcommand_mut("serve").unwrap();
        let x = serve.get_arguments().find(|a| a.get_long() == Some("librdkafka")).unwrap();
        assert!(x.is_hide_env_values_set(), "-X's environment value would show in --help");
        serve.render_long_help().to_string()
    };
    assert!(help.contains("PROJECTOR_LIBRDKAFKA"), "{help}");
    let cli = Cli::try_parse_from(["projector", "serve", "-X", "sasl.password"]).unwrap();
    let Some(Command::Serve(serve)) = cli.command else { panic!() };
    let err = serve.kafka.config().unwrap_err().to_string();
    assert!(!err.contains("sasl.password"), "{err}");
}

#[test]
fn the_admin_token_can_come_from_a_file() {
    let dir = std::env::temp_dir().join(format!("projector-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
    let cli = Cli::try_parse_from([
        "projector".as_ref(),
        "serve".as_ref(),
        "--admin-token".as_ref(),
        "ignored-when-a-file-is-given".as_ref(),
        "--admin-token-file".as_ref(),
        file.as_os_str(),
    ])
    .unwrap();
    let Some(Command::Serve(serve)) = cli.command else { panic!() };
    assert_eq!(serve.admin_token().unwrap().as_deref(), Some("0123456789abcdef0123"));
    std::fs::write(&file, "\n").unwrap();
    assert!(serve.admin_token().unwrap_err().to_string().contains("is empty"));
    std::fs::remove_dir_all(&dir).ok();
}
