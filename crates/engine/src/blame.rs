//! Reads the culprits out of a cggmp21 / round-based error.
//!
//! Why this exists: cggmp21 0.6 detects cheaters (its abort errors carry `AbortBlame` records or
//! `(party, msg, msg)` tuples) but keeps those types private; the only public view of them is the
//! error's `Debug` form. Until cggmp21 exposes blame, we read the party indices from that text.
//! The formats parsed here are covered by the tests below, so a cggmp21 upgrade that changes them
//! fails loudly instead of silently losing blame.

/// Signing-abort variants whose payload is a list of tuples starting with the party index: each
/// names the party whose own proof failed this party's check.
///
/// Not here, on purpose: the echo (reliable-broadcast) checks `Round1aNotReliable` (signing)
/// and `Round1NotReliable` (keygen). They list the parties whose echoed hash differs from this
/// party's — and when a sender equivocates, those are the honest parties that received the
/// other version, while the equivocator (who echoes the majority's view) is never listed. An
/// unsigned echo cannot tell who lied, so such an abort names nobody: blame must never fall on
/// an honest party.
const TUPLE_VARIANTS: [&str; 3] = ["EncProofOfK([", "InvalidPsi([", "InvalidPsiPrimePrime(["];

/// Party indices named in `debug` (sorted, deduplicated).
pub(crate) fn culprit_indices(debug: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for key in ["faulty_party: ", "sender: "] {
        let mut rest = debug;
        while let Some(pos) = rest.find(key) {
            rest = &rest[pos + key.len()..];
            if let Some(n) = leading_number(rest) {
                out.push(n);
            }
        }
    }
    for variant in TUPLE_VARIANTS {
        let mut rest = debug;
        while let Some(pos) = rest.find(variant) {
            rest = &rest[pos + variant.len()..];
            // Walk the list; a tuple opens with '(' at list depth 0 and its first field is the party.
            let mut depth = 0i32;
            for (idx, ch) in rest.char_indices() {
                match ch {
                    '(' | '[' | '{' => {
                        if depth == 0
                            && ch == '('
                            && let Some(n) = leading_number(&rest[idx + 1..])
                        {
                            out.push(n);
                        }
                        depth += 1;
                    }
                    ')' | '}' => depth -= 1,
                    ']' => {
                        if depth == 0 {
                            break;
                        }
                        depth -= 1;
                    }
                    _ => {}
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn leading_number(s: &str) -> Option<u16> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Formats an error with its whole `source()` chain, for reasons shown to operators.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_abort_blame_records() {
        let s = "KeygenError(Aborted(InvalidSchnorrProof([AbortBlame { faulty_party: 2, data_message: 5, proof_message: 9 }, AbortBlame { faulty_party: 0, data_message: 1, proof_message: 3 }])))";
        assert_eq!(culprit_indices(s), vec![0, 2]);
    }

    #[test]
    fn reads_signing_tuples() {
        let s = "SigningError(Aborted(InvalidPsi([(3, 10, 11, (None, Some(InvalidProof), None)), (1, 4, 5, (None, None, None))])))";
        assert_eq!(culprit_indices(s), vec![1, 3]);
        let s = "SigningError(Aborted(EncProofOfK([(4, 1, 2)])))";
        assert_eq!(culprit_indices(s), vec![4]);
    }

    #[test]
    fn reads_round_input_errors() {
        let s = "RouteReceivedError(ProcessMessage(AttemptToOverwriteReceivedMsg { msgs_ids: [1, 2], sender: 6 }))";
        assert_eq!(culprit_indices(s), vec![6]);
    }

    #[test]
    fn an_echo_mismatch_names_no_honest_party() {
        // cggmp21 lists the parties whose echo differs from this party's view: after an
        // equivocation, the honest ones. None of them is a culprit.
        let s = "SigningError(Aborted(Round1aNotReliable([(0, 12), (2, 14)])))";
        assert!(culprit_indices(s).is_empty(), "{:?}", culprit_indices(s));
        let s = "KeygenError(Aborted(Round1NotReliable([(1, 3)])))";
        assert!(culprit_indices(s).is_empty());
        // A real proof failure next to it is still read.
        let s = "SigningError(Aborted(EncProofOfK([(4, 1, 2)])))";
        assert_eq!(culprit_indices(s), vec![4]);
    }

    #[test]
    fn nothing_to_blame() {
        assert!(culprit_indices("SigningError(IoError(ReceiveMessageEof))").is_empty());
    }
}
