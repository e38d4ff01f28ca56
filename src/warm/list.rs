//! The URL list of `img-proxy warm`: one source URL per line.

/// The URLs to warm, in file order, and how many lines repeated an
/// earlier URL (each URL is asked for once).
#[derive(Debug, PartialEq, Eq)]
pub struct UrlList {
    pub urls: Vec<String>,
    pub duplicates: usize,
}

/// Parses the file's text: surrounding spaces are trimmed; blank lines and
/// lines starting with `#` are skipped.
pub fn parse(text: &str) -> UrlList {
    let mut seen = std::collections::HashSet::new();
    let mut urls = Vec::new();
    let mut duplicates = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if seen.insert(line) {
            urls.push(line.to_string());
        } else {
            duplicates += 1;
        }
    }
    UrlList { urls, duplicates }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blanks_comments_and_repeats() {
        let list = parse("# cats\nhttps://a.example/1.jpg\n\n   \n  https://a.example/2.jpg  \r\n#x\nhttps://a.example/1.jpg\n");
        assert_eq!(
            list.urls,
            vec!["https://a.example/1.jpg", "https://a.example/2.jpg"]
        );
        assert_eq!(list.duplicates, 1);
        assert_eq!(parse("").urls.len(), 0);
    }
}
