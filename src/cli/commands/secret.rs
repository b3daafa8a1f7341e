//! Secrets: `add-secret`, `update-secret`, `rm-secret`,
//! `list-domain-secrets`, `list-all-secrets`.

use std::path::Path;

use clap::Args;
use pprotect::json;
use pprotect::ops::py_repr;
use secrecy::SecretString;

use super::super::term::{errln, outln, prompt, sanitize};
use super::super::{Cli, Fail};
use super::{Target, commit, domain_given, given, or_prompt};

/// A domain and a secret named on the command line (or with `--domain`
/// and `--secret-name`; else asked for).
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// The domain (or `--domain`; asked for when not given).
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
    /// The secret's name (or `--secret-name`; asked for when not given).
    #[arg(id = "secret_arg", value_name = "SECRET", add = super::complete::secrets())]
    pub secret: Option<String>,
}

/// The domain a listing is for.
#[derive(Debug, Args)]
pub struct DomainNameArg {
    /// The domain (or `--domain`).
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
}

/// What `add-secret` and `update-secret` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `add-secret`: the secret must be new.
    Add,
    /// `update-secret`: the secret must exist.
    Update,
}

/// The domain from the argument or `--domain`, else an error naming the
/// usage (pocket_protector's "too few arguments").
pub(super) fn required_domain(cli: &Cli, arg: Option<&str>, command: &str) -> Result<String, Fail> {
    domain_given(cli, arg)?.ok_or_else(|| {
        Fail::msg(
            1,
            format!("pprotect {command}: too few arguments, expected a DOMAIN (pprotect {command} DOMAIN)"),
        )
    })
}

/// `pprotect add-secret|update-secret [DOMAIN [SECRET]]`: the domain and
/// the name are checked before the value is read or asked for.
pub fn change(cli: &Cli, t: &Target, a: &SecretArgs, change: Change) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    outln(match change {
        Change::Update => "Updating secret value.",
        Change::Add => "Adding secret value.",
    })?;
    let domain = or_prompt(domain_given(cli, a.domain.as_deref())?, "Domain name: ")?;
    f.domain(&domain)?;
    let name = secret_name(cli, a)?;
    match change {
        Change::Add => f.check_add_secret(&domain, &name)?,
        Change::Update => f.check_secret_exists(&domain, &name)?,
    }
    let value = match &cli.from_file {
        Some(from) => read_secret_value(from)?,
        None => SecretString::from(prompt("Secret value: ")?),
    };
    commit(cli, t, None, |f| match change {
        Change::Update => f.update_secret(&domain, &name, &value),
        Change::Add => f.add_secret(&domain, &name, &value),
    })
}

/// `pprotect rm-secret [DOMAIN [SECRET]]`.
pub fn rm_secret(cli: &Cli, t: &Target, a: &SecretArgs) -> Result<(), Fail> {
    t.load_for_write()?;
    // pocket_protector's header for this command.
    outln("Updating secret value.")?;
    let domain = or_prompt(domain_given(cli, a.domain.as_deref())?, "Domain name: ")?;
    let name = secret_name(cli, a)?;
    commit(cli, t, None, |f| f.rm_secret(&domain, &name))
}

/// The secret's name: the argument or `--secret-name`, else asked for.
fn secret_name(cli: &Cli, a: &SecretArgs) -> Result<String, Fail> {
    or_prompt(
        given(
            a.secret.as_deref(),
            cli.secret_name.as_deref(),
            "--secret-name",
        )?,
        "Secret name: ",
    )
}

/// `pprotect list-domain-secrets DOMAIN`.
pub fn list_domain_secrets(cli: &Cli, t: &Target, a: &DomainNameArg) -> Result<(), Fail> {
    let domain = required_domain(cli, a.domain.as_deref(), "list-domain-secrets")?;
    let f = t.load()?;
    let d = f.domain(&domain)?;
    let names: Vec<&str> = d.secrets.keys().map(String::as_str).collect();
    if cli.json {
        return outln(&json::to_string(&names));
    }
    if names.is_empty() {
        errln(&format!(
            "(No secrets in domain {} of protected at {})",
            py_repr(&sanitize(&domain)),
            t.display
        ));
        return Ok(());
    }
    outln(&names.join("\n"))
}

/// `pprotect list-all-secrets`.
pub fn list_all_secrets(cli: &Cli, t: &Target) -> Result<(), Fail> {
    let f = t.load()?;
    let map = f.all_secret_names();
    if cli.json {
        return outln(&json::to_string(&map));
    }
    if map.is_empty() {
        errln(&format!("(No secrets in protected at {})", t.display));
        return Ok(());
    }
    let lines: Vec<String> = map
        .iter()
        .map(|(k, ds)| sanitize(&format!("{k}: {}", ds.join(", "))))
        .collect();
    outln(&lines.join("\n"))
}

/// A secret value read verbatim from a file, or stdin for `-`.
fn read_secret_value(from: &str) -> Result<SecretString, Fail> {
    use std::io::Read;
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    if from == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| Fail::msg(1, format!("unable to read secret value from stdin: {e}")))?;
    } else {
        let fail = |e: std::io::Error| {
            Fail::msg(
                1,
                format!(
                    "unable to read secret value from {}: {}",
                    py_repr(from),
                    pprotect::error::strerror(&e)
                ),
            )
        };
        std::fs::File::open(Path::new(from))
            .and_then(|mut file| file.read_to_end(&mut buf))
            .map_err(fail)?;
    }
    let text = String::from_utf8(buf.to_vec()).map_err(|_| {
        Fail::msg(
            1,
            format!("secret value from {} is not UTF-8", py_repr(from)),
        )
    })?;
    Ok(SecretString::from(text))
}
