//! Environment variables named like our settings (`PROJECTOR_…`) that no
//! option reads. A misspelt one (`PROJECTOR_MAX_STALENES`) would leave its
//! option at the default without a word, so a name a letter or two from a
//! known one stops the start; any other is logged, since other tools set
//! variables of that prefix too (Kubernetes' service links for a Service
//! named `projector`: `PROJECTOR_SERVICE_HOST`, `PROJECTOR_PORT_8080_TCP`, …,
//! which are skipped).

use std::collections::BTreeSet;

/// Every setting's environment variable starts with this.
const PREFIX: &str = "PROJECTOR_";

/// A name within this many edits of a known one is taken for a misspelling;
/// one edit only where the part after the prefix is shorter than
/// [`SHORT`] (`PROJECTOR_HOME` is two from `PROJECTOR_MODE`, and no typo).
const MISSPELT_WITHIN: usize = 2;
const SHORT: usize = 8;

/// What the environment holds that no option reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnknownSettings {
    /// Names close to a known one, each with that name: refused.
    pub misspelt: Vec<(String, String)>,
    /// Any other `PROJECTOR_…` name: logged.
    pub unread: Vec<String>,
}

impl UnknownSettings {
    /// The `PROJECTOR_…` names in `names` that no option of `command` (or
    /// of its subcommands) reads.
    pub fn among(command: &clap::Command, names: impl IntoIterator<Item = String>) -> Self {
        let known = known_names(command);
        let mut found = Self::default();
        for name in names {
            if !name.starts_with(PREFIX) || known.contains(&name) || is_service_link(&name) {
                continue;
            }
            let nearest = known
                .iter()
                .map(|k| (strsim::levenshtein(k, &name), k))
                .min()
                .filter(|(edits, _)| *edits <= misspelt_within(&name));
            match nearest {
                Some((_, known)) => found.misspelt.push((name, known.clone())),
                None => found.unread.push(name),
            }
        }
        found
    }

    /// The refusal, when a name is misspelt.
    pub fn refusal(&self) -> Option<String> {
        let misspelt: Vec<String> =
            self.misspelt.iter().map(|(name, known)| format!("{name} (did you mean {known}?)")).collect();
        (!misspelt.is_empty()).then(|| {
            format!(
                "the environment sets {} that no option reads; a misspelt setting would otherwise be left at its default",
                misspelt.join(", ")
            )
        })
    }
}

/// How many edits from a known name `name` may be and still be taken for it.
fn misspelt_within(name: &str) -> usize {
    if name.len() - PREFIX.len() < SHORT { 1 } else { MISSPELT_WITHIN }
}

/// Every environment variable an option of `command` or of a subcommand reads.
fn known_names(command: &clap::Command) -> BTreeSet<String> {
    let mut names: BTreeSet<String> =
        command.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect();
    for sub in command.get_subcommands() {
        names.extend(known_names(sub));
    }
    names
}

/// Kubernetes' service links (`<SERVICE>_SERVICE_HOST`, `_SERVICE_PORT…`,
/// `_PORT`, `_PORT_<n>_<PROTO>…`) for a Service whose name begins with
/// `projector`.
fn is_service_link(name: &str) -> bool {
    name.contains("_SERVICE_HOST")
        || name.contains("_SERVICE_PORT")
        || name.ends_with("_PORT")
        || name.split("_PORT_").nth(1).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    fn among(names: &[&str]) -> UnknownSettings {
        UnknownSettings::among(&Cli::command(), names.iter().map(|n| (*n).to_owned()))
    }

    #[test]
    fn a_misspelt_setting_is_refused_naming_the_one_meant() {
        let found = among(&["PROJECTOR_MAX_STALENES", "PROJECTOR_MAX_STALENESS", "PATH", "PROJECTOR_TOPC"]);
        let misspelt = [("PROJECTOR_MAX_STALENES", "PROJECTOR_MAX_STALENESS"), ("PROJECTOR_TOPC", "PROJECTOR_TOPIC")];
        assert_eq!(found.misspelt, misspelt.map(|(a, b)| (a.to_owned(), b.to_owned())));
        assert!(found.unread.is_empty());
        let refusal = found.refusal().unwrap();
        assert!(refusal.contains("PROJECTOR_MAX_STALENES (did you mean PROJECTOR_MAX_STALENESS?)"), "{refusal}");
    }

    #[test]
    fn every_options_own_variable_is_known_whatever_its_subcommand() {
        let known = known_names(&Cli::command());
        for name in ["PROJECTOR_LOG_FORMAT", "PROJECTOR_TOPIC", "PROJECTOR_BOOTSTRAP_FROM", "DATABASE_URL"] {
            assert!(known.contains(name), "{name} in {known:?}");
        }
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        assert_eq!(among(&names), UnknownSettings::default());
    }

    #[test]
    fn service_links_pass_and_other_names_are_only_logged() {
        let links = [
            "PROJECTOR_SERVICE_HOST",
            "PROJECTOR_SERVICE_PORT",
            "PROJECTOR_SERVICE_PORT_HTTP",
            "PROJECTOR_PORT",
            "PROJECTOR_PORT_8080_TCP",
            "PROJECTOR_PORT_8080_TCP_ADDR",
            "PROJECTOR_CANARY_SERVICE_HOST",
        ];
        assert_eq!(among(&links), UnknownSettings::default());
        let found = among(&["PROJECTOR_TEAM_OWNER", "PROJECTOR_HOME"]);
        assert_eq!(found.unread, ["PROJECTOR_TEAM_OWNER", "PROJECTOR_HOME"]);
        assert!(found.misspelt.is_empty() && found.refusal().is_none());
    }
}
