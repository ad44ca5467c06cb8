//! The stack's high-water mark. cortex-m-rt's `paint-stack` fills the
//! stack region (`_stack_end` up to `_stack_start`) with
//! [`STACK_PAINT_VALUE`] before `main`; the deepest word that no longer
//! holds it is as deep as the stack ever went.

use cortex_m_rt::STACK_PAINT_VALUE;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

/// The most stack used since boot [bytes].
pub fn high_water() -> usize {
    let top = &raw const _stack_start as usize;
    let bottom = &raw const _stack_end as usize;
    let mut at = bottom;
    // SAFETY: every word between the linker's `_stack_end` and
    // `_stack_start` is RAM of the stack region, aligned to 4 bytes.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == STACK_PAINT_VALUE {
        at += 4;
    }
    top - at
}
