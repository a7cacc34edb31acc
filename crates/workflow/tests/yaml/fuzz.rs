//! The loader must return `Ok` or `Err` for any input, never panic.

use hearth_workflow::yaml::load;
use proptest::prelude::*;

/// Fragments that steer random text towards YAML's interesting corners.
const FRAGMENTS: &[&str] = &[
    "a",
    "on",
    "1",
    "-1.5",
    "true",
    "~",
    ":",
    ": ",
    " ",
    "  ",
    "\n",
    "\t",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "? ",
    "&x ",
    "*x",
    "&y ",
    "*y",
    "<<: ",
    "'",
    "\"",
    "\\",
    "|",
    ">-",
    "!!str ",
    "!!int ",
    "!x ",
    "! ",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\u{feff}",
    "é",
    "\r\n",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80).prop_map(|parts| parts.concat())
}

fn check(source: &str) {
    if let Err(error) = load(source, "fuzz.yml") {
        // Errors must point somewhere real.
        assert!(error.line() >= 1 && error.col() >= 1, "{error}");
        assert!(error.to_string().starts_with("fuzz.yml:"), "{error}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yaml_like_text_never_panics(source in yamlish()) {
        check(&source);
    }
}
