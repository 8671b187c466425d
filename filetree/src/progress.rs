/// Reports cumulative file bytes every `STEP`, not per chunk: the callback may send a message.
const STEP: u64 = 4 << 20;

pub(crate) struct Progress<'a> {
    report: &'a mut dyn FnMut(u64),
    bytes: u64,
    next: u64,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(report: &'a mut dyn FnMut(u64)) -> Self {
        Progress {
            report,
            bytes: 0,
            next: STEP,
        }
    }

    pub(crate) fn add(&mut self, bytes: u64) {
        self.bytes += bytes;
        if self.bytes >= self.next {
            (self.report)(self.bytes);
            self.next = self.bytes + STEP;
        }
    }

    pub(crate) fn finish(&mut self) {
        (self.report)(self.bytes);
    }
}
