//! seccomp syscall (placeholder)
