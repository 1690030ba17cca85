//! Helpers every text reader of kiln-data shares.
//!
//! # Byte-order marks
//!
//! Windows tools (Notepad, Excel's "CSV UTF-8", PowerShell's `Out-File`) start UTF-8 files with
//! the byte-order mark `EF BB BF` (U+FEFF). It is an encoding marker, never content: left in, it
//! glues an invisible U+FEFF to the first field, so the first image name of a VQA list is not
//! found, the first Criteo label does not parse, a JSON file is "expected value at line 1
//! column 1", a codes file loses its `#version` header, and the first token of a corpus becomes
//! a different token. Every text reader (GLUE TSV, SQuAD and VQA v2 JSON, VQA lists, CTR click
//! logs, translation corpora and dictionaries, BPE codes, LM corpora) strips **one** leading
//! BOM, after gunzipping where the file is compressed, and reads the rest as usual; a U+FEFF
//! anywhere else is left alone (it is a zero-width no-break space there). Line numbers in
//! errors are unchanged (the BOM is on line 1).

/// The UTF-8 encoding of U+FEFF.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without one leading UTF-8 byte-order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// `text` without one leading U+FEFF.
pub fn strip_bom_str(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// [`strip_bom`] in place on an owned buffer (no copy when there is no BOM).
pub fn strip_bom_vec(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
    }
    bytes
}

/// [`strip_bom_str`] in place on an owned string.
pub fn strip_bom_string(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_leading_bom_only() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFa\tb"), b"a\tb");
        assert_eq!(strip_bom(b"\xEF\xBB\xBF\xEF\xBB\xBFa"), b"\xEF\xBB\xBFa");
        assert_eq!(strip_bom(b"a\xEF\xBB\xBF"), b"a\xEF\xBB\xBF");
        assert_eq!(strip_bom(b"\xEF\xBB"), b"\xEF\xBB");
        assert_eq!(strip_bom_str("\u{feff}x\u{feff}"), "x\u{feff}");
        assert_eq!(strip_bom_vec(b"\xEF\xBB\xBFxy".to_vec()), b"xy");
        assert_eq!(strip_bom_vec(b"xy".to_vec()), b"xy");
        assert_eq!(strip_bom_string("\u{feff}z".into()), "z");
        assert_eq!(strip_bom_string(String::new()), "");
    }
}
