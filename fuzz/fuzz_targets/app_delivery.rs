#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| task_events_fuzz::app_delivery(data));
