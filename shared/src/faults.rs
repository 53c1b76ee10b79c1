//! Named fault points before and after every external write, so tests can
//! make a function fail, die or hang exactly there (see `infra/FAULTS.md`).
//!
//! Compiled only into debug builds (tests, `cargo lambda watch`); in release
//! builds `point` is an empty inline function. Armed by files under
//! `$PULSARA_FAULT_DIR/<point>/`, each holding `ACTION [match=SUBSTRING]`.

/// A fault injected by a test at a named point.
#[derive(Debug, thiserror::Error)]
#[error("injected fault at {0}")]
pub struct Injected(pub &'static str);

/// Notes the invocation being handled, so an injected crash can report it
/// failed to the runtime API, as Lambda does when a function dies.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn invocation(_request_id: &str) {}

#[cfg(debug_assertions)]
pub fn invocation(request_id: &str) {
    *armed::INVOCATION.lock().unwrap_or_else(|e| e.into_inner()) = Some(request_id.to_string());
}

/// Passes, or does what an armed test file says: fail, abort, or hang then abort.
/// `context` holds the ids a test can match on (call, restaurant, webhook, delivery).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &'static str, _context: &[&str]) -> Result<(), Injected> {
    Ok(())
}

#[cfg(debug_assertions)]
pub fn point(name: &'static str, context: &[&str]) -> Result<(), Injected> {
    let Some(dir) = std::env::var_os("PULSARA_FAULT_DIR") else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    let function = armed::function_name();
    for point_dir in [dir.join(format!("{function}:{name}")), dir.join(name)] {
        if let Some(action) = armed::take(&point_dir, context) {
            armed::log(&dir, name, &action, &function);
            return armed::fire(name, &action);
        }
    }
    Ok(())
}

#[cfg(debug_assertions)]
mod armed {
    use std::io::{Read, Write};
    use std::path::Path;
    use std::sync::Mutex;

    use super::Injected;

    pub static INVOCATION: Mutex<Option<String>> = Mutex::new(None);

    pub fn function_name() -> String {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default()
    }

    /// The action of the first armed file matching `context`; a one-shot file
    /// is removed first, so of several racing processes exactly one fires it.
    pub fn take(point_dir: &Path, context: &[&str]) -> Option<String> {
        let mut entries: Vec<_> = std::fs::read_dir(point_dir).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue; // taken by another process meanwhile
            };
            let (action, wanted) = parse(&text);
            if let Some(wanted) = wanted {
                if !context.iter().any(|c| c.contains(wanted)) {
                    continue;
                }
            }
            let always = entry.file_name().to_string_lossy().starts_with("always");
            if always || std::fs::remove_file(entry.path()).is_ok() {
                return Some(action.to_string());
            }
        }
        None
    }

    fn parse(text: &str) -> (&str, Option<&str>) {
        let line = text.lines().next().unwrap_or("").trim();
        match line.split_once(" match=") {
            Some((action, wanted)) => (action.trim(), Some(wanted.trim())),
            None => (line, None),
        }
    }

    pub fn log(dir: &Path, name: &str, action: &str, function: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("fired.log"))
        {
            let _ = writeln!(f, "{name} {action} {function} {}", std::process::id());
        }
    }

    pub fn fire(name: &'static str, action: &str) -> Result<(), Injected> {
        let mut words = action.split_whitespace();
        match words.next() {
            Some("crash") => {
                tracing::warn!(point = name, "injected crash");
                die("the function crashed (injected)")
            }
            Some("hang") => {
                let secs: u64 = words.next().and_then(|s| s.parse().ok()).unwrap_or(30);
                tracing::warn!(point = name, secs, "injected hang");
                // Blocks the whole instance, as a function stuck until Lambda kills it.
                std::thread::sleep(std::time::Duration::from_secs(secs));
                die("the function timed out (injected hang)")
            }
            _ => {
                tracing::warn!(point = name, "injected error");
                Err(Injected(name))
            }
        }
    }

    /// Ends this instance as Lambda ends a dead one: the invocation is
    /// reported failed to the runtime API (best effort) and the process
    /// aborts, nothing after this point running. Locally `infra/respawn.sh`
    /// starts a fresh instance in its place, as Lambda would.
    fn die(why: &str) -> ! {
        if let Some(id) = INVOCATION.lock().ok().and_then(|mut i| i.take()) {
            report_failure(&id, why);
        }
        std::process::abort()
    }

    /// POSTs the invocation's error to `$AWS_LAMBDA_RUNTIME_API` (host:port,
    /// maybe with a path prefix), with a blocking socket: the async runtime
    /// is not to be trusted in a dying process.
    fn report_failure(request_id: &str, why: &str) {
        let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
            return;
        };
        let (host, prefix) = match api.split_once('/') {
            Some((h, p)) => (h.to_string(), format!("/{}", p.trim_end_matches('/'))),
            None => (api.clone(), String::new()),
        };
        let body =
            serde_json::json!({"errorType": "Runtime.ExitError", "errorMessage": why}).to_string();
        let Ok(mut socket) = std::net::TcpStream::connect(&host) else {
            return;
        };
        let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let _ = write!(
            socket,
            "POST {prefix}/2018-06-01/runtime/invocation/{request_id}/error HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.ExitError\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut answer = [0u8; 256];
        let _ = socket.read(&mut answer);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn one_shot_files_fire_once_and_match_filters() {
            let dir = std::env::temp_dir().join(format!("faults-{}", std::process::id()));
            let point = dir.join("x.after");
            std::fs::create_dir_all(&point).unwrap();
            std::fs::write(point.join("1"), "error match=call_abc\n").unwrap();
            assert_eq!(take(&point, &["call_other"]), None);
            assert_eq!(take(&point, &["call_abc"]).as_deref(), Some("error"));
            assert_eq!(take(&point, &["call_abc"]), None, "consumed");
            std::fs::write(point.join("always-1"), "error").unwrap();
            assert!(take(&point, &[]).is_some() && take(&point, &[]).is_some());
            assert!(fire("x.after", "error").is_err());
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
