//! `exec`: the child environment, built as pocket_protector builds it, with
//! secrets injected, credential variables scrubbed and loader/interpreter
//! variables refused.

use std::collections::BTreeMap;

use pprotect::ops::{DecryptedDomain, py_repr};
use secrecy::{ExposeSecret, SecretString};

use super::Fail;

/// Kept with `--no-passthrough`.
pub const PASSTHROUGH: [&str; 7] = ["PATH", "HOME", "TERM", "LANG", "USER", "SHELL", "LOGNAME"];
const SCRUBBED: [&str; 4] = [
    "PPROTECT_PASSPHRASE",
    "PPROTECT_USER",
    "PPROTECT_ENV_PREFIX",
    "PPROTECT_PASSPHRASE_FILE",
];

/// Apply `--uppercase` (non-alphanumerics to `_`, upper case) and
/// `--prefix` (`PREFIX_NAME`).
pub fn transform(name: &str, prefix: Option<&str>, uppercase: bool) -> String {
    let mut n = if uppercase {
        pprotect::model::env_var_name(name)
    } else {
        name.to_string()
    };
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        n = format!("{p}_{n}");
    }
    n
}

/// The child's environment: the base (all of it, or only
/// [`PASSTHROUGH`]), minus credential variables, plus the secrets.
pub fn build_env(
    secrets: &DecryptedDomain,
    prefix: Option<&str>,
    uppercase: bool,
    no_passthrough: bool,
    base: impl Iterator<Item = (String, String)>,
    env_prefix: &str,
    allowed: &[String],
) -> Result<BTreeMap<String, SecretString>, Fail> {
    let mut secret_env: BTreeMap<String, SecretString> = BTreeMap::new();
    for (name, value) in secrets {
        let env_name = transform(name, prefix, uppercase);
        if secret_env.contains_key(&env_name) {
            return Err(Fail::msg(
                1,
                format!(
                    "secret name collision after transformation: {} and a prior secret both map to {}",
                    py_repr(name),
                    py_repr(&env_name)
                ),
            ));
        }
        secret_env.insert(env_name, value.clone());
    }
    let reserved = pprotect::envnames::refused_with(
        secret_env.keys().map(String::as_str),
        allowed,
        env_prefix,
    );
    if !reserved.is_empty() {
        return Err(Fail::msg(
            1,
            format!(
                "refusing to inject secrets as reserved env var names ({}); such names can turn a \
                 protected.yaml write into code execution. Use --prefix or --uppercase to transform secret names, \
                 or --allow-env NAME to allow one.",
                reserved.join(", ")
            ),
        ));
    }
    let mut env: BTreeMap<String, SecretString> = base
        .filter(|(k, _)| !no_passthrough || PASSTHROUGH.contains(&k.as_str()))
        .map(|(k, v)| (k, SecretString::from(v)))
        .collect();
    // Credentials and everything that steers pprotect stay out of the
    // child: every `PPROTECT_*` (the passphrase command included, which the
    // child could otherwise run to read the passphrase) and the credential
    // variables under the active prefix.
    env.retain(|k, _| !pprotect::envnames::is_pprotect_name(k, env_prefix));
    for v in SCRUBBED {
        env.remove(v);
    }
    for (k, v) in secret_env {
        env.insert(k, v);
    }
    Ok(env)
}

/// Run `command` in `env`: on Unix by replacing this process (`exec(2)`),
/// elsewhere by spawning it, waiting, and passing its exit status
/// through. Returns only with how this process must end.
pub fn exec(command: &[String], env: &BTreeMap<String, SecretString>) -> Fail {
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]).env_clear();
    for (k, v) in env {
        cmd.env(k, v.expose_secret());
    }
    let cannot = |err: std::io::Error| {
        let code = if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        Fail::msg(
            code,
            format!(
                "cannot run {}: {}",
                command[0],
                pprotect::error::strerror(&err)
            ),
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cannot(cmd.exec())
    }
    #[cfg(not(unix))]
    {
        match cmd.status() {
            Ok(status) => Fail::Quiet(status.code().unwrap_or(1)),
            Err(e) => cannot(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(names: &[&str]) -> DecryptedDomain {
        names
            .iter()
            .map(|n| (n.to_string(), SecretString::from("v".to_string())))
            .collect()
    }

    #[test]
    fn transforms_and_refusals() {
        assert_eq!(transform("db-pass", Some("APP"), true), "APP_DB_PASS");
        let base = vec![
            ("PPROTECT_PASSPHRASE".to_string(), "x".to_string()),
            ("HOME".into(), "/h".into()),
            ("FOO".into(), "1".into()),
        ];
        let env = build_env(
            &secrets(&["k"]),
            None,
            false,
            false,
            base.clone().into_iter(),
            "PPROTECT",
            &[],
        )
        .unwrap();
        assert!(
            env.contains_key("k")
                && env.contains_key("FOO")
                && !env.contains_key("PPROTECT_PASSPHRASE")
        );
        let env = build_env(
            &secrets(&["k"]),
            None,
            false,
            true,
            base.into_iter(),
            "PPROTECT",
            &[],
        )
        .unwrap();
        assert!(env.contains_key("HOME") && !env.contains_key("FOO"));
        assert!(
            build_env(
                &secrets(&["LD_PRELOAD"]),
                None,
                false,
                false,
                std::iter::empty(),
                "PPROTECT",
                &[]
            )
            .is_err()
        );
        assert!(
            build_env(
                &secrets(&["a-b", "a_b"]),
                None,
                true,
                false,
                std::iter::empty(),
                "PPROTECT",
                &[]
            )
            .is_err()
        );
    }
}
