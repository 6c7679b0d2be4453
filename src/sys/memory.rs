//! What a long-lived process of sysjail keeps resident once a jail runs.
//!
//! The supervisor, its janitor and init are one program: the launch path
//! (parsing, policy, BPF assembly, mounts) is most of its text, and runs once.
//! Afterwards each process runs a small loop. Dropping their mappings of the
//! program's text lets each keep resident only the pages its loop touches;
//! the dropped pages stay in the page cache, clean and shared, and any page
//! still needed faults back in from it.

use std::ptr::addr_of;

unsafe extern "C" {
    /// First byte of the program's image (GNU ld and lld define it).
    static __executable_start: u8;
    /// End of its text.
    static etext: u8;
}

/// Drops this process's mappings of the program's read-only image: headers,
/// symbols and text, never its data. Harmless at any time: the image is never
/// written, so its pages are the file's.
pub fn shed_text() {
    // Only the addresses of the linker's symbols are taken, never their bytes.
    let (start, end) = (addr_of!(__executable_start) as usize, addr_of!(etext) as usize);
    // SAFETY: sysconf with a valid name.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let start = start & !(page - 1);
    let end = end.div_ceil(page) * page;
    // SAFETY: [start, end) is the program's own read-only, file-backed image:
    // MADV_DONTNEED only unmaps its pages, which fault back in unchanged.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
}

/// Returns the heap's free memory to the kernel. Not for a process whose heap
/// is still shared copy-on-write with its parent: trimming writes to it.
pub fn trim_heap() {
    // SAFETY: glibc's malloc_trim, with no pointer argument.
    unsafe { libc::malloc_trim(0) };
}
