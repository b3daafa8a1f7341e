//! The agent: `unlock`, `lock`, `agent status` and `agent serve`.
// Off Unix, every command here says the agent is not supported.
#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

use std::time::Duration;

use clap::{Args, Subcommand};

use super::super::term::{errln, outln, sanitize};
use super::super::{Cli, Fail, creds};
use super::Target;

/// `unlock`'s arguments.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The custodian to unlock (or -u/--user, PPROTECT_USER, the prompt).
    #[arg(value_name = "EMAIL", add = super::complete::custodians())]
    pub email: Option<String>,
    /// How long the agent keeps the key, counted from now (not from the
    /// last use): `90s`, `15m`, `1h30m`; at most 8h.
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub ttl: String,
}

/// `agent`'s subcommand.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AgentAction,
}

/// What `pprotect agent` does.
#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// List the unlocked custodians and their time left (never key
    /// material); exits 1 when no agent runs.
    Status,
    /// Run the agent in the foreground (`unlock` starts it on demand).
    Serve,
}

/// Parse a duration: `90`, `90s`, `15m`, `1h30m`, `2h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok().map(Duration::from_secs);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    num.is_empty().then(|| Duration::from_secs(total))
}

/// A duration as people read it: `14m 5s`, `2h 0m`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(not(unix))]
fn unsupported() -> Fail {
    Fail::msg(
        2,
        "the agent needs a Unix system (a private socket with peer credentials); on this system every command derives its key",
    )
}

/// `pprotect unlock [EMAIL] [--ttl DURATION]`.
pub fn unlock(cli: &Cli, t: &Target, a: &UnlockArgs) -> Result<(), Fail> {
    let ttl = parse_duration(&a.ttl)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Fail::msg(
                2,
                format!(
                    "--ttl {}: not a duration (examples: 90s, 15m, 1h30m)",
                    sanitize(&a.ttl)
                ),
            )
        })?;
    #[cfg(unix)]
    {
        use pprotect::agent::{Client, MAX_TTL};
        if ttl > MAX_TTL {
            return Err(Fail::msg(
                2,
                format!("--ttl {}: the longest is 8h", sanitize(&a.ttl)),
            ));
        }
        let user = super::given(a.email.as_deref(), cli.user.as_deref(), "--user")?;
        let f = match t.load() {
            Ok(f) => f,
            // Mid-merge, the file holds conflict markers: the custodian's
            // key material is read from our side in the index.
            Err(e) => match super::git::repo_target(cli)
                .ok()
                .and_then(|(repo, rel)| repo.stages(&rel).ok().flatten())
            {
                Some((_, Some(ours), _)) => pprotect::ProtectedFile::from_bytes(&ours)
                    .map_err(|e| Fail::from(e.context("ours (:2:)")))?,
                _ => return Err(e),
            },
        };
        if let Some(u) = &user {
            f.check_custodian(u)?;
        }
        // Derived here, never taken from the agent itself.
        let who = creds::derive_here(cli, &f, &t.display, user)?;
        let agent = Client::new();
        let exe = std::env::current_exe()
            .map_err(|e| Fail::msg(2, format!("cannot find the pprotect binary: {e}")))?;
        agent.start(&exe)?;
        agent.add(&who, ttl)?;
        errln(&format!(
            "Unlocked {} for {} (the agent at {}).",
            sanitize(who.name()),
            show_duration(ttl),
            agent.path().display()
        ));
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = (cli, t, ttl);
        Err(unsupported())
    }
}

/// `pprotect lock`.
pub fn lock() -> Result<(), Fail> {
    #[cfg(unix)]
    {
        if pprotect::agent::Client::new().lock()? {
            errln("Locked: the agent wiped every key and stopped.");
        } else {
            errln("No agent is running.");
        }
        Ok(())
    }
    #[cfg(not(unix))]
    Err(unsupported())
}

/// `pprotect agent status|serve`.
pub fn agent(cli: &Cli, a: &AgentArgs) -> Result<(), Fail> {
    #[cfg(unix)]
    {
        use pprotect::agent::Client;
        match a.action {
            AgentAction::Serve => {
                if !pprotect::agent::serve()? {
                    errln("An agent is already running.");
                }
                Ok(())
            }
            AgentAction::Status => {
                let agent = Client::new();
                let held = agent.status()?;
                if cli.json {
                    #[derive(serde::Serialize)]
                    struct Key<'a> {
                        name: &'a str,
                        remaining_seconds: u64,
                    }
                    #[derive(serde::Serialize)]
                    struct Status<'a> {
                        running: bool,
                        pid: Option<u32>,
                        socket: String,
                        keys: Vec<Key<'a>>,
                    }
                    let keys = held
                        .iter()
                        .flatten()
                        .map(|h| Key {
                            name: &h.name,
                            remaining_seconds: h.remaining.as_secs(),
                        })
                        .collect();
                    outln(&pprotect::json::to_string(&Status {
                        running: held.is_some(),
                        pid: held.as_ref().and(agent.pid()),
                        socket: agent.path().display().to_string(),
                        keys,
                    }))?;
                    return if held.is_some() {
                        Ok(())
                    } else {
                        Err(Fail::Quiet(1))
                    };
                }
                let Some(held) = held else {
                    errln("No agent is running: `pprotect unlock` starts one.");
                    return Err(Fail::Quiet(1));
                };
                if held.is_empty() {
                    errln("The agent holds no key.");
                }
                for h in &held {
                    outln(&format!(
                        "{}\t{} left",
                        sanitize(&h.name),
                        show_duration(h.remaining)
                    ))?;
                }
                Ok(())
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (cli, a);
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h30"), None);
        assert_eq!(parse_duration("15 minutes"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(show_duration(Duration::from_secs(845)), "14m 5s");
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h 0m");
        assert_eq!(show_duration(Duration::from_secs(9)), "9s");
    }
}
