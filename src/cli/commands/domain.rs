//! Domains and their owners: `add-domain`, `rm-domain`, `list-domains`,
//! `rotate-domain-keys`, `add-owner`, `rm-owner`, `migrate-owner`.

use clap::Args;
use pprotect::json;

use super::super::term::{self, errln, outln, sanitize};
use super::super::{Cli, Fail, creds};
use super::{Target, commit, domain_given, or_prompt, owner_of};

/// A domain named on the command line (or with `--domain`; else asked for).
#[derive(Debug, Args)]
pub struct DomainArgs {
    /// The domain (or `--domain`; asked for when not given).
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
}

/// A domain and a custodian.
#[derive(Debug, Args)]
pub struct OwnerArgs {
    /// The domain (or `--domain`; asked for when not given).
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
    /// The custodian's email (asked for when not given).
    #[arg(value_name = "EMAIL", add = super::complete::custodians())]
    pub email: Option<String>,
}

/// The custodian to make an owner of every domain the acting user owns.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The new owner's email (asked for when not given).
    #[arg(value_name = "EMAIL", add = super::complete::custodians())]
    pub email: Option<String>,
}

/// `pprotect add-domain [DOMAIN]`: a named domain is checked before the
/// passphrase is asked for. (Prompted, the questions come in
/// pocket_protector's order: credentials, then the domain.)
pub fn add_domain(cli: &Cli, t: &Target, a: &DomainArgs) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    let named = domain_given(cli, a.domain.as_deref())?;
    if let Some(d) = &named {
        f.check_add_domain(d)?;
    }
    let who = creds::get(cli, &f, &t.display)?;
    outln("Adding new domain.")?;
    let domain = or_prompt(named, "Domain name: ")?;
    commit(cli, t, Some(&who), |f| f.add_domain(&domain, &who))
}

/// `pprotect rm-domain [DOMAIN]`.
pub fn rm_domain(cli: &Cli, t: &Target, a: &DomainArgs) -> Result<(), Fail> {
    t.load_for_write()?;
    outln("Removing domain.")?;
    let domain = or_prompt(domain_given(cli, a.domain.as_deref())?, "Domain name: ")?;
    commit(cli, t, None, |f| f.rm_domain(&domain))
}

/// `pprotect rotate-domain-keys [DOMAIN]`.
pub fn rotate(cli: &Cli, t: &Target, a: &DomainArgs) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    let named = domain_given(cli, a.domain.as_deref())?;
    let who = owner_of(cli, t, &f, named.as_deref().as_slice())?;
    let domain = or_prompt(named, "Domain name: ")?;
    commit(cli, t, Some(&who), |f| f.rotate_domain_key(&domain, &who))
}

/// `pprotect add-owner [DOMAIN [EMAIL]]`: named, the domain, the new
/// owner and the acting user's ownership are checked before the key is
/// derived.
pub fn add_owner(cli: &Cli, t: &Target, a: &OwnerArgs) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    let named = domain_given(cli, a.domain.as_deref())?;
    if let (Some(d), Some(e)) = (&named, &a.email) {
        f.check_add_owner(d, e)?;
    }
    let who = owner_of(cli, t, &f, named.as_deref().as_slice())?;
    outln("Adding domain owner.")?;
    let domain = or_prompt(named, "Domain name: ")?;
    let new_owner = or_prompt(a.email.clone(), "New owner email: ")?;
    commit(cli, t, Some(&who), |f| {
        f.add_owner(&domain, &new_owner, &who)
    })
}

/// `pprotect rm-owner [DOMAIN [EMAIL]]`.
pub fn rm_owner(cli: &Cli, t: &Target, a: &OwnerArgs) -> Result<(), Fail> {
    t.load_for_write()?;
    outln("Removing domain owner.")?;
    let domain = or_prompt(domain_given(cli, a.domain.as_deref())?, "Domain name: ")?;
    let owner = or_prompt(a.email.clone(), "Owner email: ")?;
    commit(cli, t, None, |f| f.rm_owner(&domain, &owner))?;
    errln(
        "Note: the removed owner can still decrypt this domain (from this file revision and all \
         earlier ones) until you run rotate-domain-keys and change the secret values.",
    );
    Ok(())
}

/// `pprotect migrate-owner [EMAIL]`.
pub fn migrate_owner(cli: &Cli, t: &Target, a: &MigrateArgs) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    if let Some(e) = &a.email {
        f.check_custodian(e)?;
    }
    let who = creds::get(cli, &f, &t.display)?;
    let new_owner = or_prompt(a.email.clone(), "New owner email: ")?;
    let owned = f.owned_domains(who.name());
    if owned.is_empty() {
        return outln("You do not own any domains.");
    }
    outln(&sanitize(&format!(
        "Will add {new_owner} as owner to: {}",
        owned.join(", ")
    )))?;
    if !term::confirm("Proceed? [y/N] ")? {
        return outln("Aborting.");
    }
    commit(cli, t, Some(&who), |f| {
        f.migrate_owner(&new_owner, &who).map(|_| ())
    })
}

/// `pprotect list-domains`.
pub fn list_domains(cli: &Cli, t: &Target) -> Result<(), Fail> {
    let f = t.load()?;
    let names: Vec<&str> = f.domains.keys().map(String::as_str).collect();
    if cli.json {
        return outln(&json::to_string(&names));
    }
    if names.is_empty() {
        errln(&format!("(No domains in protected at {})", t.display));
        return Ok(());
    }
    outln(
        &names
            .iter()
            .map(|n| sanitize(n))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
