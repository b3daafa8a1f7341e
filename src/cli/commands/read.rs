//! Reading secrets: `decrypt-domain` and `exec`.

use std::collections::BTreeMap;

use clap::Args;
use pprotect::json;
use pprotect::ops::{DecryptedDomain, py_repr};
use secrecy::SecretString;

use super::super::term::{self, out};
use super::super::{Cli, Fail, exec};
use super::secret::required_domain;
use super::{Target, owner_of};

/// `decrypt-domain`'s arguments.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The domain (or `--domain`).
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
}

/// `exec`'s arguments.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The domain (or `--domain`, which may be given more than once).
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `pprotect exec [DOMAIN] [--domain D]... -- COMMAND...`: the secrets of
/// every domain named (a later domain's value wins on a shared name), in
/// the command's environment.
pub fn exec(cli: &Cli, t: &Target, a: &ExecArgs) -> Result<(), Fail> {
    let mut domains: Vec<String> = a.domain.iter().cloned().collect();
    for d in &cli.domain {
        if !d.is_empty() && !domains.contains(d) {
            domains.push(d.clone());
        }
    }
    if domains.is_empty() {
        // pocket_protector's words (`pprotect exec DOMAIN -- CMD` works too).
        return Err(Fail::msg(1, "--domain is required for exec"));
    }
    if a.command.is_empty() {
        return Err(Fail::msg(
            1,
            "exec requires a command after -- (e.g. pprotect exec --domain prod -- ./myapp)",
        ));
    }
    let f = t.load()?;
    let names: Vec<&str> = domains.iter().map(String::as_str).collect();
    let who = owner_of(cli, t, &f, &names)?;
    let mut secrets = DecryptedDomain::new();
    for d in &domains {
        secrets.extend(f.decrypt_domain(d, &who)?);
    }
    let env = exec::build_env(
        &secrets,
        cli.prefix.as_deref(),
        cli.uppercase,
        cli.no_passthrough,
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        &cli.env_prefix,
        &cli.allow_env,
    )?;
    drop(secrets);
    Err(exec::exec(&a.command, &env))
}

/// `pprotect decrypt-domain DOMAIN`: JSON, `--output-format env|shell`
/// (names mapped by `--prefix` and `--uppercase` as `exec` maps them), or
/// one `--secret NAME`. The domain, the secret and the ownership are
/// checked before the key is derived.
pub fn decrypt_domain(cli: &Cli, t: &Target, a: &DecryptArgs) -> Result<(), Fail> {
    let domain = required_domain(cli, a.domain.as_deref(), "decrypt-domain")?;
    let domain = domain.as_str();
    let format = match cli.output_format.as_deref() {
        None => None,
        Some(f @ ("json" | "env" | "shell")) => Some(f),
        Some(_) => {
            return Err(Fail::msg(
                1,
                "--output-format must be one of: json, env, shell",
            ));
        }
    };
    let f = t.load()?;
    let secret = cli.secret.as_deref();
    if let Some(s) = secret
        && !f.domain(domain)?.secrets.contains_key(s)
    {
        return Err(Fail::msg(
            1,
            format!(
                "secret {} not found in domain {}",
                py_repr(s),
                py_repr(domain)
            ),
        ));
    }
    let who = owner_of(cli, t, &f, &[domain])?;
    let secrets = f.decrypt_domain(domain, &who)?;
    let selected: Vec<(&str, &SecretString)> = match secret {
        Some(s) => vec![(s, &secrets[s])],
        None => secrets.iter().map(|(k, v)| (k.as_str(), v)).collect(),
    };
    match (format, secret) {
        (None, Some(s)) => {
            let v = zeroize::Zeroizing::new(format!("{}\n", term::expose(&secrets[s])));
            out(&v)
        }
        (None | Some("json"), _) => {
            let obj: BTreeMap<&str, &str> = selected
                .iter()
                .map(|(k, v)| (*k, term::expose(v)))
                .collect();
            let mut text = json::to_secret_string(&obj);
            text.push('\n');
            out(&text)
        }
        (Some(fmt), _) => {
            // Names as exec names its variables: `--uppercase`, then
            // `--prefix` joined with `_` (`--prefix APP`: `APP_db_url`).
            let mut mapped: Vec<(String, &SecretString)> = Vec::with_capacity(selected.len());
            let mut from: BTreeMap<String, &str> = BTreeMap::new();
            for (name, value) in &selected {
                let env_name = exec::transform(name, cli.prefix.as_deref(), cli.uppercase);
                if let Some(other) = from.insert(env_name.clone(), name) {
                    return Err(Fail::msg(
                        1,
                        format!(
                            "secrets {} and {} both map to the variable {}",
                            py_repr(other),
                            py_repr(name),
                            py_repr(&env_name)
                        ),
                    ));
                }
                mapped.push((env_name, value));
            }
            // Users `eval` this output: the same name policy as exec.
            let refused = pprotect::envnames::refused_with(
                mapped.iter().map(|(n, _)| n.as_str()),
                &cli.allow_env,
                &cli.env_prefix,
            );
            if !refused.is_empty() {
                return Err(Fail::msg(
                    1,
                    format!(
                        "refusing to print secrets as reserved env var names ({}); such names can turn a \
                         protected.yaml write into code execution when the output is evaluated. \
                         Use --allow-env NAME to allow one.",
                        refused.join(", ")
                    ),
                ));
            }
            let export = if fmt == "shell" { "export " } else { "" };
            let mut text = zeroize::Zeroizing::new(String::new());
            for (name, value) in &mapped {
                if !is_shell_identifier(name) {
                    return Err(Fail::msg(
                        1,
                        format!(
                            "{} is not a valid shell identifier; cannot safely represent in env/shell format",
                            py_repr(name)
                        ),
                    ));
                }
                let v = term::expose(value);
                // One `NAME=value` per line: a value with a line break is
                // written as dotenv readers take it (double quotes, `\n`),
                // so a line-based reader never sees a second variable.
                let quoted = if fmt == "env" && v.contains(['\n', '\r']) {
                    zeroize::Zeroizing::new(dotenv_double_quote(v))
                } else {
                    zeroize::Zeroizing::new(term::shell_quote(v))
                };
                text.push_str(&format!("{export}{name}={}\n", quoted.as_str()));
            }
            out(&text)
        }
    }
}

/// Whether `name` can be a shell variable.
fn is_shell_identifier(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value in dotenv's double quotes: `\\`, `"`, line feed and carriage
/// return escaped (what `pprotect import` and dotenv readers undo).
fn dotenv_double_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() * 2 + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}
