//! Bounds-checked cursors over byte slices, shared by the LISP control-message code and the
//! reliable-transport framing. Every read and write is checked; nothing here can panic.

use crate::ControlError;

/// A read cursor. Reads return [`ControlError::Truncated`] naming the field that did not fit.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// `Truncated` (`what`) when `count` items of at least `min_len` octets each cannot fit in
    /// the remaining octets: a count to refuse before allocating for it.
    pub(crate) fn check_count(
        &self,
        count: usize,
        min_len: usize,
        what: &'static str,
    ) -> Result<(), ControlError> {
        let needed = count.saturating_mul(min_len);
        if needed > self.remaining() {
            return Err(ControlError::Truncated {
                what,
                needed,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ControlError> {
        let end = self.pos.checked_add(n).ok_or(ControlError::Truncated {
            what,
            needed: usize::MAX,
            available: self.remaining(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(ControlError::Truncated {
            what,
            needed: n,
            available: self.remaining(),
        })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ControlError> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ControlError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ControlError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ControlError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, ControlError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
}

/// A write cursor over a caller-provided buffer. Writes past the end return
/// [`ControlError::Truncated`] (the emitters check `buffer_len()` first, so this is a backstop).
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), ControlError> {
        let available = self.buf.len().saturating_sub(self.pos);
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(ControlError::Truncated {
                what: "emit buffer",
                needed: usize::MAX,
                available,
            })?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(ControlError::Truncated {
                what: "emit buffer",
                needed: bytes.len(),
                available,
            })?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), ControlError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), ControlError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), ControlError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), ControlError> {
        self.put(&v.to_be_bytes())
    }
}

/// Checks that `buf` can hold `needed` octets before an emitter starts writing.
pub(crate) fn check_room(buf: &[u8], needed: usize) -> Result<(), ControlError> {
    if buf.len() < needed {
        return Err(ControlError::Truncated {
            what: "emit buffer",
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

/// `buf[start..end]` to emit into, or `Truncated` when `buf` ends before `end`.
pub(crate) fn room_mut(
    buf: &mut [u8],
    start: usize,
    end: usize,
) -> Result<&mut [u8], ControlError> {
    let available = buf.len();
    buf.get_mut(start..end).ok_or(ControlError::Truncated {
        what: "emit buffer",
        needed: end,
        available,
    })
}

/// Converts a count to the `u8` field that carries it, or `TooLarge`.
pub(crate) fn count_u8(what: &'static str, n: usize) -> Result<u8, ControlError> {
    u8::try_from(n).map_err(|_| ControlError::TooLarge {
        what,
        limit: usize::from(u8::MAX),
        actual: n,
    })
}

/// Converts a length to the `u16` field that carries it, or `TooLarge`.
pub(crate) fn len_u16(what: &'static str, n: usize) -> Result<u16, ControlError> {
    u16::try_from(n).map_err(|_| ControlError::TooLarge {
        what,
        limit: usize::from(u16::MAX),
        actual: n,
    })
}

/// A message emitted into a new vector of `len` octets (its `buffer_len()`), cut to the length
/// `emit` returns: the body of every `to_vec`.
pub(crate) fn emit_vec(
    len: usize,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, ControlError>,
) -> Result<Vec<u8>, ControlError> {
    let mut v = vec![0u8; len];
    let n = emit(&mut v)?;
    v.truncate(n);
    Ok(v)
}
