//! Column-aligned plain-text tables (`lookctl targets`, `status`, `review list`): each
//! column as wide as its widest cell, `gap` spaces between columns, no trailing blanks.

/// Formats `rows` (the header first), one line each.
pub fn format<S: AsRef<str>>(rows: &[Vec<S>], gap: usize) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let n = cell.as_ref().chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.extend(std::iter::repeat_n(' ', gap));
            }
            let cell = cell.as_ref();
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns_without_trailing_blanks() {
        let rows = vec![vec!["A", "BB", "C"], vec!["long", "x", ""]];
        assert_eq!(super::format(&rows, 2), "A     BB  C\nlong  x\n");
    }
}
