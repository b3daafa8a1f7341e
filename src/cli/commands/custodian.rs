//! Key custodians: `init`, `add-key-custodian`,
//! `set-key-custodian-passphrase`, `rekey-custodian`, `rm-key-custodian`,
//! `list-user-secrets`.

use std::collections::BTreeMap;

use clap::Args;
use pprotect::ProtectedFile;
use pprotect::crypto::{self, KeyType};
use pprotect::json;
use secrecy::{ExposeSecret, SecretString};

use super::super::term::{self, errln, outln, prompt, prompt_secret, sanitize};
use super::super::{Cli, Fail, creds};
use super::{Target, commit, key_type, or_prompt, show_raw_key_and_confirm, write_checked};

/// A custodian named on the command line (else asked for).
#[derive(Debug, Args)]
pub struct CustodianArgs {
    /// The custodian's email (asked for when not given).
    #[arg(value_name = "EMAIL", add = super::complete::custodians())]
    pub email: Option<String>,
}

/// `pprotect init [EMAIL]`.
pub fn init(cli: &Cli, t: &Target, a: &CustodianArgs) -> Result<(), Fail> {
    if t.path.exists() {
        return Err(Fail::msg(
            2,
            format!("Protected file already exists: {}", t.display),
        ));
    }
    add(cli, t, a, None)
}

/// `pprotect add-key-custodian [EMAIL]`.
pub fn add_key_custodian(cli: &Cli, t: &Target, a: &CustodianArgs) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    add(cli, t, a, Some(&f))
}

/// Add a custodian to `existing`, or to a new file when `None` (`init`).
/// The name is checked before any passphrase is asked for.
fn add(
    cli: &Cli,
    t: &Target,
    a: &CustodianArgs,
    existing: Option<&ProtectedFile>,
) -> Result<(), Fail> {
    let kt = key_type(cli)?;
    outln("Adding new key custodian.")?;
    let name = or_prompt(a.email.clone(), "User email: ")?;
    match existing {
        Some(f) => f.check_add_key_custodian(&name)?,
        None => ProtectedFile::create().check_add_key_custodian(&name)?,
    }
    let (pass, key_type) = if kt == Some("raw") {
        let pass = crypto::generate_raw_passphrase();
        if !show_raw_key_and_confirm(&pass)? {
            // pocket_protector exits 0 here; an abort is a failure.
            outln("Aborting. Key was not confirmed.")?;
            return Err(Fail::Quiet(1));
        }
        (SecretString::from(pass.to_string()), KeyType::Raw)
    } else {
        let pass = new_passphrase("Passphrase: ", &name)?;
        let kt = if kt == Some("fast") {
            KeyType::FAST
        } else {
            KeyType::Hard
        };
        (pass, kt)
    };
    let derive = |f: &mut ProtectedFile| {
        let _spinner = term::kdf_spinner(key_type);
        f.add_key_custodian(&name, &pass, key_type)
    };
    if existing.is_some() {
        return commit(cli, t, None, derive);
    }
    let mut f = ProtectedFile::create();
    derive(&mut f)?;
    let _lock = pprotect::store::FileLock::acquire(&t.path)?;
    if t.path.exists() {
        return Err(Fail::msg(
            2,
            format!("Protected file already exists: {}", t.display),
        ));
    }
    write_checked(t, cli.confirm.then_some(""), &f.to_yaml_string())
}

/// A new passphrase, typed twice. At a terminal, an empty or weak one
/// (zxcvbn's estimate below 3 of 4, with the email as a known word) is
/// named and needs a `y` to be kept; piped answers are taken as given, as
/// pocket_protector takes them.
fn new_passphrase(label: &str, email: &str) -> Result<SecretString, Fail> {
    loop {
        let pass = prompt_secret(label, true)?;
        if !term::stdin_is_tty() {
            return Ok(pass);
        }
        let Some(why) = weakness(pass.expose_secret(), email) else {
            return Ok(pass);
        };
        errln(&format!("warning: {why}"));
        if term::confirm("Use it anyway? [y/N] ")? {
            return Ok(pass);
        }
    }
}

/// Why a passphrase is too weak to keep without asking, if it is.
pub fn weakness(pass: &str, email: &str) -> Option<String> {
    if pass.is_empty() {
        return Some(
            "the passphrase is empty: anyone with the file can open this custodian's domains"
                .into(),
        );
    }
    let local = email.split('@').next().unwrap_or(email);
    let estimate = zxcvbn::zxcvbn(pass, &[email, local]);
    if estimate.score() >= zxcvbn::Score::Three {
        return None;
    }
    let mut why = format!(
        "this passphrase is weak (strength {} of 4, guessed in about {} guesses)",
        u8::from(estimate.score()),
        estimate.guesses()
    );
    if let Some(fb) = estimate.feedback() {
        if let Some(w) = fb.warning() {
            why.push_str(&format!("; {w}"));
        }
        if let Some(s) = fb.suggestions().first() {
            why.push_str(&format!("; {s}"));
        }
    }
    Some(why)
}

/// `set-key-custodian-passphrase [EMAIL]` and `rekey-custodian [EMAIL]`.
pub fn change(cli: &Cli, t: &Target, a: &CustodianArgs, rekey: bool) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    let kt = key_type(cli)?;
    let user = or_prompt(a.email.clone(), "User email: ")?;
    if a.email.is_some() {
        f.check_custodian(&user)?;
    }
    let pass = prompt_secret("Current passphrase: ", false)?;
    let who = creds::verify_plain(&f, user, pass, term::stdin_is_tty())?;
    let (new_pass, key_type) = if rekey && kt == Some("raw") {
        let p = crypto::generate_raw_passphrase();
        if !show_raw_key_and_confirm(&p)? {
            // pocket_protector exits 0 here; an abort is a failure.
            outln("Aborting. Key was not confirmed.")?;
            return Err(Fail::Quiet(1));
        }
        (SecretString::from(p.to_string()), KeyType::Raw)
    } else {
        let p = new_passphrase("New passphrase: ", who.name())?;
        (
            p,
            if kt == Some("fast") {
                KeyType::FAST
            } else {
                KeyType::Hard
            },
        )
    };
    commit(cli, t, Some(&who), |f| {
        let _spinner = term::kdf_spinner(key_type);
        if rekey {
            f.rekey_custodian(&who, &new_pass, key_type)
        } else {
            f.set_key_custodian_passphrase(&who, &new_pass, key_type)
        }
    })
}

/// `pprotect rm-key-custodian [EMAIL]`.
pub fn rm_key_custodian(cli: &Cli, t: &Target, a: &CustodianArgs) -> Result<(), Fail> {
    t.load_for_write()?;
    outln("Removing key custodian.")?;
    let name = match &a.email {
        Some(n) => n.clone(),
        None => prompt("User email: ")?,
    };
    commit(cli, t, None, |f| f.rm_key_custodian(&name))
}

/// `pprotect list-user-secrets`.
pub fn list_user_secrets(cli: &Cli, t: &Target) -> Result<(), Fail> {
    let f = t.load()?;
    let who = creds::get(cli, &f, &t.display)?;
    let owned = f.owned_domains(who.name());
    if cli.json {
        let obj: BTreeMap<&str, Vec<&String>> = owned
            .iter()
            .map(|d| (*d, f.domains[*d].secrets.keys().collect()))
            .collect();
        return outln(&json::to_string(&obj));
    }
    if owned.is_empty() {
        errln(&format!(
            "User {} does not own any domains.",
            sanitize(who.name())
        ));
        return Ok(());
    }
    let lines: Vec<String> = owned
        .iter()
        .map(|d| {
            let names: Vec<&str> = f.domains[*d].secrets.keys().map(String::as_str).collect();
            let list = if names.is_empty() {
                "(no secrets)".to_string()
            } else {
                names.join(", ")
            };
            sanitize(&format!("{d}: {list}"))
        })
        .collect();
    outln(&lines.join("\n"))
}
