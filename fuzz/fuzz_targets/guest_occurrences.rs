#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| task_events_fuzz::guest_occurrences(data));
