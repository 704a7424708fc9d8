//! Ctrl-C and friends: the first live `Lab` installs a handler thread for
//! SIGINT, SIGTERM and SIGHUP that tears down every lab of this process and
//! exits with 128 + signal.

use std::sync::{Arc, Mutex, Once, Weak};

use crate::lab::Inner;

static LABS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

fn labs() -> std::sync::MutexGuard<'static, Vec<Weak<Inner>>> {
    LABS.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn register(inner: &Arc<Inner>) {
    install();
    let mut l = labs();
    l.retain(|w| w.strong_count() > 0);
    l.push(Arc::downgrade(inner));
}

pub(crate) fn unregister(inner: &Arc<Inner>) {
    labs().retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(inner)));
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("lab: cannot install signal handlers ({e}); Ctrl-C will not clean up");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("lab-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Copy the list out: teardown must not run under the registry lock.
                    let live: Vec<Arc<Inner>> = labs().iter().filter_map(Weak::upgrade).collect();
                    if !live.is_empty() {
                        eprintln!("lab: signal {sig}: tearing down {} lab(s)", live.len());
                    }
                    for l in live {
                        l.teardown();
                    }
                    std::process::exit(128 + sig);
                }
            });
        if let Err(e) = spawned {
            eprintln!("lab: cannot start the signal thread ({e}); Ctrl-C will not clean up");
        }
    });
}
