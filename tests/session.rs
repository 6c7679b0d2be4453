//! The session boundary between the caller and the jail: what of the host a
//! jailed process can see of its init, and what shared kernel state it may
//! fill. Real jails, as root.

mod support;

use support::{Ctx, Need, Runner, TestResult, ensure, text};

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test(
        "dev_shm_is_bounded_and_settable",
        &[Root],
        dev_shm_is_bounded_and_settable,
    );
    r.test("init_shows_no_host_path", &[Root], init_shows_no_host_path);
    r.run()
}

/// The size of the jail's /dev/shm, in bytes, as statfs(2) reports it inside.
fn shm_size(ctx: &Ctx, body: &str) -> Result<u64, String> {
    let file = ctx.jail(body);
    let out = ctx.up(&file, &["/usr/bin/stat", "-f", "-c", "%b %S", "/dev/shm"]);
    let s = text(&out.stdout);
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>());
    match (it.next(), it.next()) {
        (Some(Ok(blocks)), Some(Ok(size))) => Ok(blocks * size),
        _ => Err(format!("{:?}: {s}{}", out.status, text(&out.stderr))),
    }
}

fn dev_shm_is_bounded_and_settable(ctx: &Ctx) -> TestResult {
    // Without a size a tmpfs takes half of the host's memory.
    let default = shm_size(ctx, "[limits]\npids = 64\n")?;
    ensure(default == 64 << 20, || format!("default /dev/shm of {default} bytes"))?;
    let set = shm_size(ctx, "[limits]\npids = 64\nshm = \"8M\"\n")?;
    ensure(set == 8 << 20, || format!("limits.shm = 8M gave {set} bytes"))?;
    // And it holds: writing past it fails with ENOSPC.
    let file = ctx.jail("[limits]\npids = 64\nshm = \"1M\"\n");
    let out = ctx.up(
        &file,
        &[
            "/bin/sh",
            "-c",
            "head -c 2000000 /dev/zero > /dev/shm/big 2>/dev/null; stat -c %s /dev/shm/big",
        ],
    );
    let written: u64 = text(&out.stdout).trim().parse().unwrap_or(u64::MAX);
    ensure(written <= 1 << 20, || {
        format!("{written} bytes written to a 1M /dev/shm")
    })
}

fn init_shows_no_host_path(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("[limits]\npids = 64\n");
    let out = ctx.up(&file, &["/bin/sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]);
    let cmdline = text(&out.stdout);
    let host_paths = [
        support::bin(),
        &file.display().to_string(),
        &ctx.dir.display().to_string(),
    ];
    ensure(
        out.status.success()
            && cmdline.starts_with(&format!("sysjail-init {}", ctx.name))
            && host_paths.iter().all(|p| !cmdline.contains(p)),
        || format!("{:?}: /proc/1/cmdline is {cmdline:?}", out.status),
    )
}
