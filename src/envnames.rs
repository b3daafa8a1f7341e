//! Which environment variable names a secret may take.
//!
//! A secret becomes an environment variable in `exec` and in
//! `decrypt-domain --output-format env|shell` (whose output users `eval`).
//! Anyone with push rights can add a secret, so a secret named after a
//! variable that loads code or changes how programs behave
//! (`LD_PRELOAD`, `PERL5LIB`, `BASH_ENV`, `PAGER`, `HTTPS_PROXY`) would
//! turn a write to the protected file into code execution or traffic
//! interception on the reader's machine. Those names are refused unless
//! the reader allows each by name.

/// Names refused exactly (compared case-insensitively for the proxy
/// variables, which programs read in either case).
const EXACT: &[&str] = &[
    // Shells.
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "CDPATH",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
    "ZDOTDIR",
    "INPUTRC",
    "HOME",
    "SHELL",
    "TMPDIR",
    // Interpreters and runtimes.
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
    "TCLLIBPATH",
    "R_PROFILE",
    "R_PROFILE_USER",
    "R_ENVIRON",
    "GEM_PATH",
    "GEM_HOME",
    "BUNDLE_GEMFILE",
    "DOTNET_STARTUP_HOOKS",
    "CORECLR_PROFILER_PATH",
    // Programs that run other programs.
    "PAGER",
    "MANPAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "EDITOR",
    "VISUAL",
    "BROWSER",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "SUDO_EDITOR",
    "TERMINAL",
    // The C library and loaders.
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "TZDIR",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    // Network interception.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "NODE_REPL_EXTERNAL_MODULE",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "KUBECONFIG",
    "SSH_AUTH_SOCK",
    "SSH_ASKPASS_REQUIRE",
    "GNUPGHOME",
    "GPG_AGENT_INFO",
    "CARGO_HOME",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    // pprotect's own credentials.
    "PPROTECT_USER",
    "PPROTECT_PASSPHRASE",
    "PPROTECT_PASSPHRASE_FILE",
    "PPROTECT_ENV_PREFIX",
];

/// Prefixes refused.
const PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "PYTHON",
    "GIT_",
    "PERL",
    "RUBY",
    "BASH_FUNC_",
    "MALLOC_",
    "GLIBC_",
    "NPM_CONFIG_",
    "CARGO_BUILD_",
    "XDG_",
    "LC_",
];

/// Whether `name` is refused as an environment variable name for a
/// secret (unless `allowed` lists it). Proxy variables are matched in
/// any case; everything else as written (variables are case-sensitive).
pub fn is_refused(name: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == name) {
        return false;
    }
    let upper = name.to_ascii_uppercase();
    let proxy = upper.ends_with("_PROXY") && EXACT.contains(&upper.as_str());
    proxy
        || EXACT.contains(&name)
        || PREFIXES.iter().any(|p| name.starts_with(p))
        || name.contains("%%")
}

/// The refused names among `names`, in order.
pub fn refused<'a>(names: impl IntoIterator<Item = &'a str>, allowed: &[String]) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|n| is_refused(n, allowed))
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
            "PPROTECT_PASSPHRASE_FILE",
            "BASH_FUNC_x%%",
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
            "DOCKER_PASSWORD",
            "SSH_PRIVATE_KEY",
            "GPG_PASSPHRASE",
            "CARGO_REGISTRY_TOKEN",
        ] {
            assert!(!is_refused(n, &[]), "{n}");
        }
        assert!(!is_refused("PAGER", &["PAGER".to_string()]));
    }
}
