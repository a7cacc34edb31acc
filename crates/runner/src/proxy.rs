//! The runner's HTTP proxy, passed on to its jobs (pain point #20): the runner's own
//! `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (either spelling) become both
//! spellings of each in every job's environment (curl reads only the lower-case
//! `http_proxy`, most others the upper-case one).
//!
//! `NO_PROXY` gets the hosts the job reaches the runner's side at (the forge, the cache): a
//! proxy outside would not reach a forge on this machine, and need not carry the traffic of
//! one inside. The engine adds the addresses the job sees those at (a container job's network
//! gateway) and the job's service names. Each proxy is a [`Reach`] of the job: a proxy on the
//! runner's loopback is forwarded from a container job's network as the forge is, and one the
//! job cannot reach is a warning line in its log. Services get none of this: GitHub's runner
//! learned not to force a proxy onto them (actions/runner#2290).
//!
//! A variable set in `runner.envs` is the operator's word for jobs and wins over these.

use hearth_backend::Reach;

/// The proxy variables, upper-case spelling, in the order they are given to jobs.
const PROXIES: [&str; 3] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];
const NO_PROXY: &str = "NO_PROXY";

/// What the runner's environment says of proxies, for its jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobProxy {
    /// `(HTTP_PROXY, url)`, ...: each set proxy, with a scheme (`http://` when it had none).
    proxies: Vec<(&'static str, String)>,
    /// The runner's own `NO_PROXY` entries.
    no_proxy: Vec<String>,
}

impl JobProxy {
    /// The proxies `lookup` (the runner's environment) names; `None` when it names none.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<JobProxy> {
        let read = |name: &str| {
            lookup(name)
                .or_else(|| lookup(&name.to_ascii_lowercase()))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let proxies: Vec<(&'static str, String)> = PROXIES
            .iter()
            .filter_map(|name| read(name).map(|url| (*name, with_scheme(&url))))
            .collect();
        if proxies.is_empty() {
            return None;
        }
        let no_proxy = read(NO_PROXY)
            .map(|list| split_list(&list))
            .unwrap_or_default();
        Some(JobProxy { proxies, no_proxy })
    }

    /// The passwords in the proxies' URLs: a job's log must not show them.
    pub fn secrets(&self) -> Vec<String> {
        self.proxies
            .iter()
            .filter_map(|(_, url)| url::Url::parse(url).ok()?.password().map(str::to_owned))
            .filter(|password| !password.is_empty())
            .collect()
    }

    /// The runner's process environment's proxies.
    pub fn from_process() -> Option<JobProxy> {
        JobProxy::from_env(|name| std::env::var(name).ok())
    }

    /// The job's variables, `NO_PROXY` with the hosts of `own` (the runner's URLs the job is
    /// given: the forge, the cache) added, and each proxy as something the job may reach.
    pub fn for_job(&self, own: &[&str]) -> (Vec<(String, String)>, Vec<Reach>) {
        let mut env = Vec::with_capacity(2 * (self.proxies.len() + 1));
        for (name, url) in &self.proxies {
            env.push(((*name).to_owned(), url.clone()));
            env.push((name.to_ascii_lowercase(), url.clone()));
        }
        let mut no_proxy = self.no_proxy.clone();
        for host in own.iter().filter_map(|url| host_of(url)) {
            if !no_proxy.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
                no_proxy.push(host);
            }
        }
        let no_proxy = no_proxy.join(",");
        env.push((NO_PROXY.to_owned(), no_proxy.clone()));
        env.push((NO_PROXY.to_ascii_lowercase(), no_proxy));

        let mut reach: Vec<Reach> = Vec::new();
        for (_, url) in &self.proxies {
            // A proxy with credentials in its URL is given as it is: the job's address of it
            // is worked out (and the URL rewritten) only for one without.
            let credentials = url::Url::parse(url).is_ok_and(|u| !u.username().is_empty());
            if !credentials && !reach.iter().any(|r| &r.url == url) {
                reach.push(Reach::optional(
                    url.clone(),
                    "the proxy",
                    "give the runner (HTTP_PROXY, HTTPS_PROXY) a proxy address its jobs can \
                     reach, or set the job's own in runner.envs",
                ));
            }
        }
        (env, reach)
    }
}

/// `proxy:3128` as `http://proxy:3128`: tools that take a bare address take it with a scheme,
/// and the job's address of the proxy is worked out from the URL.
fn with_scheme(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The host of `url` (`http://user@[::1]:3000/x` → `::1`), as `NO_PROXY` lists hosts.
fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.host()? {
        url::Host::Domain(name) => name.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some(host)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn proxy(vars: &[(&str, &str)]) -> Option<JobProxy> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        JobProxy::from_env(|name| vars.get(name).cloned())
    }

    fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn no_proxy_variable_means_nothing_is_passed() {
        assert_eq!(proxy(&[]), None);
        assert_eq!(
            proxy(&[("NO_PROXY", "localhost"), ("HTTP_PROXY", " ")]),
            None
        );
    }

    #[test]
    fn each_proxy_goes_to_jobs_in_both_spellings_with_the_runners_hosts_not_proxied() {
        let proxy = proxy(&[
            ("http_proxy", "proxy.internal:3128"),
            ("HTTPS_PROXY", "http://127.0.0.1:3129"),
            ("no_proxy", "localhost, .internal"),
        ])
        .expect("a proxy");
        let (env, reach) = proxy.for_job(&["https://git.example.com:3000", "http://10.0.0.5:9"]);
        assert_eq!(
            value(&env, "HTTP_PROXY"),
            Some("http://proxy.internal:3128")
        );
        assert_eq!(
            value(&env, "http_proxy"),
            Some("http://proxy.internal:3128")
        );
        assert_eq!(value(&env, "https_proxy"), Some("http://127.0.0.1:3129"));
        assert_eq!(value(&env, "ALL_PROXY"), None);
        let expected = "localhost,.internal,git.example.com,10.0.0.5";
        assert_eq!(value(&env, "NO_PROXY"), Some(expected));
        assert_eq!(value(&env, "no_proxy"), Some(expected));
        let urls: Vec<&str> = reach.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            ["http://proxy.internal:3128", "http://127.0.0.1:3129"]
        );
        assert!(reach.iter().all(|r| r.optional && r.what == "the proxy"));
    }

    #[test]
    fn one_proxy_for_both_schemes_is_one_reach_and_hosts_are_listed_once() {
        let proxy = proxy(&[
            ("HTTP_PROXY", "http://p:1"),
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "GIT.example.com"),
        ])
        .expect("a proxy");
        let (env, reach) = proxy.for_job(&["https://git.example.com", "http://[::1]:8080/x"]);
        assert_eq!(reach.len(), 1);
        assert_eq!(value(&env, "NO_PROXY"), Some("GIT.example.com,::1"));
    }

    #[test]
    fn a_proxy_with_credentials_is_passed_as_it_is_and_its_password_masked() {
        let proxy = proxy(&[("HTTPS_PROXY", "http://me:s3cret@proxy:3128")]).expect("a proxy");
        let (env, reach) = proxy.for_job(&[]);
        assert_eq!(
            value(&env, "https_proxy"),
            Some("http://me:s3cret@proxy:3128")
        );
        assert_eq!(value(&env, "NO_PROXY"), Some(""));
        assert!(reach.is_empty());
        assert_eq!(proxy.secrets(), ["s3cret"]);
    }
}
