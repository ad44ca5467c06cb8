//! Arbitrary bytes from the broker, as the gateway takes them: the command
//! topic and the command JSON never panic, and a command that parses
//! re-serialises to JSON that parses to the same command (and so to the
//! same LMU command).
#![no_main]

use gridtwin::gateway::schema::{lmu_of_topic, parse_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let topic = String::from_utf8_lossy(data);
    if let Some(lmu) = lmu_of_topic("s", "g", &topic) {
        assert_eq!(
            lmu_of_topic("s", "g", &format!("gridtwin/s/g/cmd/{lmu}")),
            Some(lmu)
        );
    }
    if let Ok(m) = parse_command(data) {
        let lmu = m.action.to_lmu();
        let json = serde_json::to_vec(&m).expect("a parsed command serialises");
        let again = parse_command(&json).expect("a re-serialised command parses");
        assert_eq!(again.action, m.action);
        assert_eq!(again.id, m.id);
        assert_eq!(again.action.to_lmu(), lmu);
        // The LMU crate's command survives serde_json on its own, too.
        let lmu_json = serde_json::to_vec(&lmu).expect("an LMU command serialises");
        assert_eq!(
            serde_json::from_slice::<gridtwin_lmu::Command>(&lmu_json).ok(),
            Some(lmu)
        );
    }
});
