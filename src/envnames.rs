//! Which environment variable names a secret may take.
//!
//! A secret becomes an environment variable in `exec` and in
//! `decrypt-domain --output-format env|shell` (whose output users `eval`).
//! Anyone with push rights can add a secret, so a secret named after a
//! variable that loads code or changes how programs behave
//! (`LD_PRELOAD`, `PERL5LIB`, `BASH_ENV`, `PAGER`, `HTTPS_PROXY`) would
//! turn a write to the protected file into code execution or traffic
//! interception on the reader's machine. Those names are refused unless
//! the reader allows each by name (`--allow-env NAME`), except
//! pprotect's own, which are never allowed.
//!
//! Each family below says why it is refused. A name is compared as
//! written (Unix variables are case-sensitive) except where its consumer
//! reads it in any case: proxies (curl and most HTTP stacks read
//! `http_proxy` and `HTTP_PROXY`), npm's configuration (`npm_config_*` in
//! any case), pprotect's own variables, and every name on Windows, whose
//! environment is case-insensitive.

/// A family of refused names: how it matches, and why.
struct Family {
    /// Exact names.
    exact: &'static [&'static str],
    /// Name prefixes.
    prefixes: &'static [&'static str],
    /// Name suffixes.
    suffixes: &'static [&'static str],
    /// Whether the consumer reads the name in any case.
    any_case: bool,
}

/// The families, each with the reason it is refused.
const FAMILIES: &[Family] = &[
    // Shells: the command search path and field splitting, files a shell
    // sources at start-up (`ENV`, `BASH_ENV`, `ZDOTDIR`, `INPUTRC`, zsh's
    // `FPATH` autoloads), prompts a shell expands with command substitution
    // (`PS0`..`PS4`, `PROMPT_COMMAND`, zsh's `PROMPT`/`RPROMPT`), option
    // sets, and the directories programs write and read (`HOME`,
    // `TMPDIR`, `HISTFILE`).
    Family {
        exact: &[
            "PATH",
            "IFS",
            "ENV",
            "BASH_ENV",
            "CDPATH",
            "PS0",
            "PS1",
            "PS2",
            "PS3",
            "PS4",
            "PROMPT",
            "RPROMPT",
            "PROMPT_COMMAND",
            "SHELLOPTS",
            "BASHOPTS",
            "GLOBIGNORE",
            "EXECIGNORE",
            "ZDOTDIR",
            "FPATH",
            "INPUTRC",
            "HOME",
            "SHELL",
            "TMPDIR",
            "HISTFILE",
        ],
        prefixes: &["BASH_FUNC_"],
        suffixes: &[],
        any_case: false,
    },
    // Interpreters and runtimes: options and module paths they load code
    // from at start-up (Python, Perl, Ruby, Node, the JVM, PHP, Tcl, R,
    // Lua's `LUA_INIT`, Erlang/Elixir's `ERL_AFLAGS`, .NET start-up hooks
    // and profilers, Julia, GHC's RTS options).
    Family {
        exact: &[
            "NODE_OPTIONS",
            "NODE_PATH",
            "NODE_REPL_EXTERNAL_MODULE",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "JDK_JAVA_OPTIONS",
            "CLASSPATH",
            "PHPRC",
            "PHP_INI_SCAN_DIR",
            "TCLLIBPATH",
            "DOTNET_STARTUP_HOOKS",
            "ERL_AFLAGS",
            "ERL_ZFLAGS",
            "ERL_FLAGS",
            "ERL_LIBS",
            "ELIXIR_ERL_OPTIONS",
            "GHCRTS",
            "JULIA_LOAD_PATH",
            "JULIA_DEPOT_PATH",
        ],
        prefixes: &[
            "PYTHON",
            "PERL",
            "RUBY",
            "GEM_",
            "BUNDLE_",
            "R_PROFILE",
            "R_ENVIRON",
            "R_LIBS",
            "LUA_INIT",
            "LUA_PATH",
            "LUA_CPATH",
            "CORECLR_",
            "COR_PROFILER",
        ],
        suffixes: &[],
        any_case: false,
    },
    // npm reads its whole configuration from `npm_config_*` in any case
    // (`npm_config_script_shell`, `npm_config_node_options`, ...).
    Family {
        exact: &[],
        prefixes: &["NPM_CONFIG_"],
        suffixes: &[],
        any_case: true,
    },
    // Build tools: compilers, linkers and flags they run or pass on
    // (`-fplugin=`, `-Wl,` loaders), make's flags, Go's and Cargo's
    // build configuration and runners.
    Family {
        exact: &[
            "CC",
            "CXX",
            "CPP",
            "LD",
            "AR",
            "CFLAGS",
            "CXXFLAGS",
            "CPPFLAGS",
            "LDFLAGS",
            "MAKEFLAGS",
            "MFLAGS",
            "GOFLAGS",
            "CARGO_HOME",
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "RUSTDOCFLAGS",
        ],
        prefixes: &["CGO_", "CARGO_BUILD_", "CARGO_TARGET_"],
        suffixes: &[],
        any_case: false,
    },
    // Programs that run other programs: pagers (`PAGER`, and every
    // `*_PAGER`: `PSQL_PAGER`, `SYSTEMD_PAGER`, `AWS_PAGER`, ...), editors
    // (`*_EDITOR`), password prompts (`*_ASKPASS`), browsers, terminals,
    // less's input filters.
    Family {
        exact: &[
            "PAGER",
            "MANPAGER",
            "LESSOPEN",
            "LESSCLOSE",
            "EDITOR",
            "VISUAL",
            "BROWSER",
            "TERMINAL",
            "SSH_ASKPASS_REQUIRE",
        ],
        prefixes: &[],
        suffixes: &["_PAGER", "_EDITOR", "_ASKPASS"],
        any_case: false,
    },
    // The C library and dynamic loaders: preloads and library paths
    // (`LD_*`, `DYLD_*`), allocator hooks, character-set converters and
    // locale files it loads (`GCONV_PATH`, `LOCPATH`, `LC_*`), resolver
    // configuration.
    Family {
        exact: &[
            "GCONV_PATH",
            "LOCPATH",
            "NLSPATH",
            "HOSTALIASES",
            "RES_OPTIONS",
            "LOCALDOMAIN",
            "TZDIR",
        ],
        prefixes: &["LD_", "DYLD_", "MALLOC_", "GLIBC_", "LC_"],
        suffixes: &[],
        any_case: false,
    },
    // TLS trust and network interception: OpenSSL's configuration and
    // engines (code), CA bundles, proxies (read in either case by curl and
    // most HTTP libraries), TLS verification switches.
    Family {
        exact: &[
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
            "NODE_TLS_REJECT_UNAUTHORIZED",
        ],
        prefixes: &["OPENSSL_"],
        suffixes: &[],
        any_case: false,
    },
    Family {
        exact: &[],
        prefixes: &[],
        suffixes: &["_PROXY"],
        any_case: true,
    },
    // Where tools find their daemons, agents and configuration: Docker,
    // Kubernetes, ssh-agent, GnuPG, git (`GIT_*`: hooks, ssh commands,
    // config), and the XDG base directories every tool reads its
    // configuration from.
    Family {
        exact: &[
            "DOCKER_HOST",
            "DOCKER_CONFIG",
            "DOCKER_CERT_PATH",
            "DOCKER_CONTEXT",
            "KUBECONFIG",
            "SSH_AUTH_SOCK",
            "GNUPGHOME",
            "GPG_AGENT_INFO",
        ],
        prefixes: &["GIT_", "XDG_"],
        suffixes: &[],
        any_case: false,
    },
];

/// Whether `name` is one pprotect itself reads: any `PPROTECT_*`, and the
/// credential variables under the active `--env-prefix`
/// (`<PREFIX>_USER`, `_PASSPHRASE`, `_PASSPHRASE_CMD`, `_PASSPHRASE_FILE`).
/// A secret with such a name would control the next pprotect run in that
/// environment (run a passphrase command, lift the KDF cost ceiling):
/// never allowed.
pub fn is_pprotect_name(name: &str, env_prefix: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("PPROTECT_") {
        return true;
    }
    let prefix = format!("{}_", env_prefix.to_ascii_uppercase());
    upper.strip_prefix(&prefix).is_some_and(|rest| {
        matches!(
            rest,
            "USER" | "PASSPHRASE" | "PASSPHRASE_CMD" | "PASSPHRASE_FILE"
        )
    })
}

fn in_family(name: &str, f: &Family) -> bool {
    let upper;
    let n = if f.any_case || cfg!(windows) {
        upper = name.to_ascii_uppercase();
        upper.as_str()
    } else {
        name
    };
    f.exact.contains(&n)
        || f.prefixes.iter().any(|p| n.starts_with(p))
        || f.suffixes.iter().any(|s| n.ends_with(s))
}

/// Whether `name` is refused as an environment variable name for a
/// secret, with pprotect's own variables under the default prefix
/// (`PPROTECT`); see [`is_refused_with`].
pub fn is_refused(name: &str, allowed: &[String]) -> bool {
    is_refused_with(name, allowed, "PPROTECT")
}

/// Whether `name` is refused as an environment variable name for a
/// secret: pprotect's own (under `env_prefix` too), always; a name of a
/// refused family, unless `allowed` lists it; and `%%` (bash's exported
/// functions).
pub fn is_refused_with(name: &str, allowed: &[String], env_prefix: &str) -> bool {
    if is_pprotect_name(name, env_prefix) {
        return true;
    }
    if allowed.iter().any(|a| a == name) {
        return false;
    }
    name.contains("%%") || FAMILIES.iter().any(|f| in_family(name, f))
}

/// The refused names among `names`, in order (default prefix).
pub fn refused<'a>(names: impl IntoIterator<Item = &'a str>, allowed: &[String]) -> Vec<&'a str> {
    refused_with(names, allowed, "PPROTECT")
}

/// The refused names among `names`, in order.
pub fn refused_with<'a>(
    names: impl IntoIterator<Item = &'a str>,
    allowed: &[String],
    env_prefix: &str,
) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|n| is_refused_with(n, allowed, env_prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        for n in [
            "PERLLIB",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "LESSOPEN",
            "PAGER",
            "PATH",
            "BASH_ENV",
            "LD_PRELOAD",
            "https_proxy",
            "HTTPS_PROXY",
            "PPROTECT_PASSPHRASE_FILE",
            "PPROTECT_PASSPHRASE_CMD",
            "PPROTECT_TRUST_KDF_PARAMS",
            "PPROTECT_PASSPHRASE_CMD_TIMEOUT",
            "pprotect_user",
            "BASH_FUNC_x%%",
            "npm_config_script_shell",
            "NPM_CONFIG_NODE_OPTIONS",
            "Npm_Config_Foo",
            "PS0",
            "PS1",
            "LUA_INIT",
            "LUA_INIT_5_4",
            "ERL_AFLAGS",
            "PSQL_PAGER",
            "SYSTEMD_PAGER",
            "AWS_PAGER",
            "KUBE_EDITOR",
            "GIT_ASKPASS",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
            "RSYNC_PROXY",
        ] {
            assert!(is_refused(n, &[]), "{n}");
        }
        for n in [
            "DB_PASSWORD",
            "api-token",
            "path",
            "home_dir",
            "STRIPE_KEY",
            "NODE_AUTH_TOKEN",
            "NPM_TOKEN",
            "DOCKER_PASSWORD",
            "SSH_PRIVATE_KEY",
            "GPG_PASSPHRASE",
            "CARGO_REGISTRY_TOKEN",
            "MY_APP_USER",
        ] {
            assert!(!is_refused(n, &[]), "{n}");
        }
        assert!(!is_refused("PAGER", &["PAGER".to_string()]));
        // pprotect's own names cannot be allowed.
        assert!(is_refused(
            "PPROTECT_PASSPHRASE_CMD",
            &["PPROTECT_PASSPHRASE_CMD".to_string()]
        ));
        // Under another prefix, its credential variables too.
        assert!(is_refused_with("ACME_PASSPHRASE_CMD", &[], "ACME"));
        assert!(is_refused_with("ACME_USER", &[], "ACME"));
        assert!(!is_refused_with("ACME_TOKEN", &[], "ACME"));
    }
}
