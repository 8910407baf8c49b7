use super::*;

fn line(s: &str) -> String {
    Shown::of(s).one_line()
}

/// The parts cover every original code point once, in order.
fn covers(s: &str) {
    let shown = Shown::of(s);
    let mut next = 0;
    for p in &shown.parts {
        let (at, text) = match p {
            Part::Text { text, at } => (*at, Some(text)),
            Part::Mark { at, .. } => (*at, None),
        };
        assert_eq!(at.0, next, "{s:?}: {shown:?}");
        assert!(at.1 > at.0);
        if let Some(t) = text {
            let orig: String = s.chars().skip(at.0).take(at.1 - at.0).collect();
            assert_eq!(&orig, t);
        }
        next = at.1;
    }
    assert_eq!(next, shown.chars);
    assert_eq!(shown.chars, s.chars().count());
}

#[test]
fn plain_commands_show_as_themselves() {
    for s in [
        "ls -la /tmp",
        "echo 'a  b'",
        "naïve café",
        "for i in 1 2; do\n    echo $i\ndone",
    ] {
        let shown = Shown::of(s);
        assert!(shown.is_plain(), "{s:?}: {shown:?}");
        assert_eq!(shown.one_line(), s.replace('\n', "⟨LF⟩"));
        covers(s);
    }
}

#[test]
fn space_runs_are_counted_but_indentation_is_kept() {
    let s = format!("ls /tmp/x{}; rm -rf /tmp/x/v", " ".repeat(300));
    assert_eq!(line(&s), "ls /tmp/x⟨300 spaces⟩; rm -rf /tmp/x/v");
    let shown = Shown::of(&s);
    assert_eq!(shown.flags[0].code, FlagCode::WhitespaceRun);
    assert!(shown.flags[0].text.contains("300 spaces"));
    covers(&s);
    assert_eq!(
        line("if x; then\n        y\nfi"),
        "if x; then⟨LF⟩        y⟨LF⟩fi"
    );
    let deep = format!("x\n{}y", " ".repeat(40));
    assert_eq!(line(&deep), "x⟨LF⟩⟨40 spaces⟩y");
    assert_eq!(line(&format!("a{}b", " ".repeat(2000))), "a⟨2,000 spaces⟩b");
}

#[test]
fn bidi_zero_width_and_controls_are_marked_and_flagged() {
    let s = "echo hi \u{202E}; rm -rf x";
    assert_eq!(line(s), "echo hi ⟨U+202E⟩; rm -rf x");
    let shown = Shown::of(s);
    assert_eq!(shown.flags.len(), 1);
    assert_eq!(shown.flags[0].code, FlagCode::HiddenCharacter);
    assert!(shown.flags[0].text.contains("RIGHT-TO-LEFT OVERRIDE"));
    assert_eq!(line("ec\u{200B}ho"), "ec⟨U+200B⟩ho");
    assert_eq!(line("a\u{200B}\u{200B}\u{200B}b"), "a⟨U+200B ×3⟩b");
    assert_eq!(
        line("echo ok\rrm -rf /\x1b[2K\x08\t"),
        "echo ok⟨CR⟩rm -rf /⟨ESC⟩[2K⟨BS⟩⟨TAB⟩"
    );
    let flags = Shown::of("a\x1bb").flags;
    assert_eq!(flags[0].code, FlagCode::ControlCharacter);
    assert_eq!(line("\u{7}"), "⟨U+0007⟩");
    for s in [
        "echo hi \u{202E}; rm",
        "a\u{200B}\u{200B}b",
        "x\r\x1b",
        "\u{FEFF}\u{E0041}",
    ] {
        covers(s);
    }
}

#[test]
fn look_alike_letters_in_latin_words_are_marked() {
    assert_eq!(line("\u{0441}at /etc/hostname"), "⟨U+0441⟩at /etc/hostname");
    let shown = Shown::of("\u{0441}at x");
    assert_eq!(shown.flags[0].code, FlagCode::MixedScript);
    assert!(shown.flags[0].text.contains("Cyrillic U+0441"), "{shown:?}");
    // A word entirely in another script is not a look-alike of a Latin one.
    assert!(Shown::of("echo привет").is_plain());
    assert_eq!(line("ｃat"), "⟨U+FF43⟩at");
    // Format and space characters the named table does not list are marked too.
    for c in ['\u{1680}', '\u{0890}', '\u{110CD}', '\u{E000}', '\u{0378}'] {
        let s = format!("a{c}b");
        assert_eq!(line(&s), format!("a⟨U+{:04X}⟩b", c as u32), "{c:?}");
        assert_eq!(Shown::of(&s).flags[0].code, FlagCode::HiddenCharacter);
    }
    covers("\u{0441}\u{0430}t");
}

#[test]
fn right_to_left_letters_and_shell_look_alikes_are_marked() {
    // A Hebrew letter makes a bidi-aware screen reorder `#;>` around it.
    assert_eq!(
        line("true \u{05D0}#;>\u{05D1} rm -rf v"),
        "true ⟨U+05D0⟩#;>⟨U+05D1⟩ rm -rf v"
    );
    for (c, name) in [
        ('\u{FE5F}', "﹟"),
        ('\u{266F}', "♯"),
        ('\u{2019}', "’"),
        ('\u{037E}', "Greek question mark"),
        ('\u{2212}', "minus"),
        ('\u{01C0}', "dental click"),
        ('\u{0336}', "combining long stroke"),
        ('\u{1FA75}', "emoji"),
        ('\u{1D42B}', "math bold r"),
        ('\u{13AA}', "Cherokee A"),
    ] {
        let s = format!("ls x {c} y");
        let shown = Shown::of(&s);
        assert_eq!(
            shown.one_line(),
            format!("ls x ⟨U+{:04X}⟩ y", c as u32),
            "{name}"
        );
        assert_eq!(shown.flags[0].code, FlagCode::HiddenCharacter, "{name}");
    }
    // Ordinary non-ASCII letters and CJK text are not look-alikes.
    assert!(Shown::of("echo naïve 日本語 привет").is_plain());
}

#[test]
fn line_break_runs_are_counted_and_a_one_line_text_marks_every_line_feed() {
    assert_eq!(line("a\n\nb"), "a⟨LF⟩⟨LF⟩b");
    let s = format!("true{}rm -rf v", "\n".repeat(60));
    let shown = Shown::of(&s);
    assert_eq!(shown.one_line(), "true⟨60 line breaks⟩rm -rf v");
    assert!(
        shown
            .flags
            .iter()
            .any(|f| f.text.contains("60 line breaks"))
    );
    covers(&s);
    let reason = Shown::of_line("rotate logs\n[low] rm: harmless\napprovals 1/1");
    assert_eq!(
        reason.one_line(),
        "rotate logs⟨LF⟩[low] rm: harmless⟨LF⟩approvals 1/1"
    );
    assert!(
        reason
            .parts
            .iter()
            .all(|p| !matches!(p, Part::Text { text, .. } if text.contains('\n')))
    );
    assert_eq!(reason.flags[0].code, FlagCode::LineBreak);
}

#[test]
fn one_line_within_says_what_it_leaves_out() {
    let s = format!("echo {}; rm -rf d", "a".repeat(2995));
    let (text, more) = Shown::of(&s).one_line_within(300);
    assert_eq!(text.chars().count(), 300);
    assert_eq!(more, s.chars().count() - 300);
    assert!(!text.contains("rm -rf"));
    let (whole, none) = Shown::of("ls").one_line_within(300);
    assert_eq!((whole.as_str(), none), ("ls", 0));
    // A mark is never cut in half.
    let s = format!("ab{}", "\u{202E}");
    let (text, more) = Shown::of(&s).one_line_within(5);
    assert_eq!((text.as_str(), more), ("ab", 1));
}

#[test]
fn thousands_separators() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(2714), "2,714");
    assert_eq!(thousands(1234567), "1,234,567");
}

#[test]
fn any_text_is_covered() {
    let mut seed = 0x2545_f491_u64;
    let alphabet: Vec<char> = "ab \n\t\r\x1b\u{202E}\u{200B}\u{0441}ｃ;é"
        .chars()
        .collect();
    for _ in 0..2000 {
        let len = (seed % 40) as usize;
        let s: String = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        covers(&s);
    }
}
