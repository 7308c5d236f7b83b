//! The FTP helper's per-flow state as bytes, for the table's snapshot
//! ([`crate::conntrack::snapshot`]): where lines start in each direction,
//! a partial command line per direction, and the sequence adjustment NAT's
//! rewrites made; the pending expectation is the table's to write.
//!
//! Layout (little-endian): the sequence numbers after the last newlines
//! (2 × 2 × `u32`), how many of each direction's are set (2 × `u8`, at
//! most 2), per direction a partial line (`u8` 0 or 1; then its start
//! `u32`, its length `u16` at most [`LINE_MAX`] and that many bytes), per
//! direction the sequence adjustment (correction position, offset before,
//! offset after: `u32` each).

use std::io::{self, Read, Write};

use super::{FtpState, PartialLine, LINE_MAX};
use crate::conntrack::seqadj::{SeqAdjust, SeqAdjustWay};
use crate::conntrack::snapshot::{LoadError, SnapReader, SnapWriter, SnapshotState};
use crate::conntrack::tuple::Dir;
use crate::wire::tcp::SeqNum;

impl SnapshotState for FtpState {
    const KIND: u16 = 1;

    fn save_state<W: Write>(&self, w: &mut SnapWriter<W>) -> io::Result<()> {
        for d in &self.seq_after_newline {
            for s in d {
                w.u32(s.0)?;
            }
        }
        w.put(&self.remembered)?;
        for p in &self.partial {
            match p {
                None => w.u8(0)?,
                Some(p) => {
                    w.u8(1)?;
                    w.u32(p.start_seq.0)?;
                    let len = p.len.min(LINE_MAX);
                    w.u16(len as u16)?;
                    w.put(&p.buf[..len])?;
                }
            }
        }
        for dir in [Dir::Original, Dir::Reply] {
            let way = self.seqadj.way(dir);
            w.u32(way.correction_pos.0)?;
            w.u32(way.offset_before)?;
            w.u32(way.offset_after)?;
        }
        Ok(())
    }

    fn load_state<R: Read>(r: &mut SnapReader<R>) -> Result<Self, LoadError> {
        let mut s = FtpState::default();
        for d in &mut s.seq_after_newline {
            for v in d {
                *v = SeqNum(r.u32()?);
            }
        }
        for m in &mut s.remembered {
            *m = r.u8()?;
            if *m > 2 {
                return Err(LoadError::Field("FTP: more than 2 line starts"));
            }
        }
        for p in &mut s.partial {
            *p = match r.u8()? {
                0 => None,
                1 => {
                    let start_seq = SeqNum(r.u32()?);
                    let len = usize::from(r.u16()?);
                    if len > LINE_MAX {
                        return Err(LoadError::Field("FTP: partial line over LINE_MAX"));
                    }
                    let mut line = PartialLine {
                        start_seq,
                        len,
                        ..PartialLine::default()
                    };
                    line.buf[..len].copy_from_slice(r.take(len)?);
                    Some(line)
                }
                _ => return Err(LoadError::Field("FTP: partial line tag")),
            };
        }
        let mut ways = [SeqAdjustWay::default(); 2];
        for way in &mut ways {
            way.correction_pos = SeqNum(r.u32()?);
            way.offset_before = r.u32()?;
            way.offset_after = r.u32()?;
        }
        s.seqadj = SeqAdjust::from_ways(ways);
        Ok(s)
    }

    fn set_pending_expectation(&mut self, id: Option<u32>) {
        self.expectation = id;
    }
}
