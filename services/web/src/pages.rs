//! The pages, as compile-time-checked templates (maud): every one works without
//! JavaScript for reading and posting. The layout carries the page's server span as
//! `<meta name="traceparent">`, which the browser's tracer (`static/app.js`) continues.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::assets;

/// Who is looking: their username and their session's CSRF token.
pub struct Viewer<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
}

/// The frame of every page.
pub fn layout(
    title: &str,
    traceparent: &str,
    viewer: Option<&Viewer<'_>>,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="traceparent" content=(traceparent);
                title { (title) " · socialnet" }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::js_path()) defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "socialnet" }
                    @if let Some(v) = viewer {
                        nav {
                            form.inline.search method="get" action="/search" role="search" {
                                input type="search" name="q" placeholder="Find people" aria-label="Find people" maxlength="64";
                            }
                            a href="/messages" { "Messages" }
                            a href={ "/u/" (v.username) } { "@" (v.username) }
                            form.inline method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// The sign-in and register forms (`register`: the second).
pub fn sign_in(
    pre: &str,
    register: bool,
    error: Option<&str>,
    oauth: &[(String, String)],
) -> Markup {
    let (action, heading, button) = if register {
        ("/register", "Create an account", "Register")
    } else {
        ("/signin", "Sign in", "Sign in")
    };
    html! {
        section.card {
            h1 { (heading) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(pre);
                label { "Username" input name="username" autocomplete="username" required minlength="3" maxlength="32"; }
                label { "Password" input name="password" type="password" autocomplete=(if register { "new-password" } else { "current-password" }) required minlength="8"; }
                button type="submit" { (button) }
            }
            @if !register && !oauth.is_empty() {
                div.oauth {
                    @for (name, label) in oauth {
                        a.button href={ "/oauth/" (name) } { "Sign in with " (label) }
                    }
                }
            }
            p {
                @if register { "Have an account? " a href="/signin" { "Sign in" } }
                @else { "New here? " a href="/register" { "Create an account" } }
            }
        }
    }
}

fn post_item(p: &Value) -> Markup {
    let id = p["id"].as_i64().unwrap_or_default();
    let author = p["author_username"].as_str().unwrap_or("?");
    html! {
        article.post data-post=(id) {
            header {
                a href={ "/u/" (author) } { "@" (author) }
                " · "
                time datetime=(p["created_at"].as_str().unwrap_or("")) { (short_time(p["created_at"].as_str().unwrap_or(""))) }
            }
            p { (p["body"].as_str().unwrap_or("")) }
            @if let Some(media) = p["media"].as_array() {
                @for m in media {
                    @if let Some(src) = m["thumbnails"]["640"].as_str().or(m["thumbnails"]["160"].as_str()) {
                        img src=(src) alt="" loading="lazy";
                    }
                }
            }
            footer {
                a href={ "/posts/" (id) } { (p["comment_count"].as_i64().unwrap_or(0)) " comments" }
                " · " (p["like_count"].as_i64().unwrap_or(0)) " likes"
            }
        }
    }
}

/// `2026-11-28T09:30:00.123Z` → `2026-11-28 09:30`.
fn short_time(t: &str) -> String {
    t.get(..16).map(|s| s.replace('T', " ")).unwrap_or_default()
}

/// The next page of a list of posts: the page's own URL (without JavaScript) and the
/// fragment's (what `app.js` fetches and appends in place).
pub struct Next {
    pub page: String,
    pub fragment: String,
}

/// The posts of one page and the link to the next. With JavaScript the next page is
/// fetched when the link scrolls into view (or is clicked) and appended in place.
pub fn posts(items: &[Value], next: Option<Next>) -> Markup {
    html! {
        div.posts {
            @for p in items { (post_item(p)) }
            @if items.is_empty() { p.empty { "Nothing here yet." } }
        }
        @if let Some(n) = next {
            a.more href=(n.page) data-more=(n.fragment) { "Older posts" }
        }
    }
}

/// Home: the composer and the timeline.
pub fn home(csrf: &str, items: &[Value], next: Option<Next>, error: Option<&str>) -> Markup {
    html! {
        section.card {
            form.compose method="post" action="/posts" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(csrf);
                label { "What's new?" textarea name="body" required maxlength="1000" rows="3" {} }
                label { "Photo (optional)" input type="file" name="image" accept="image/jpeg,image/png,image/webp,image/gif"; }
                button type="submit" { "Post" }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
        }
        h1 { "Your timeline" }
        div.timeline { (posts(items, next)) }
    }
}

/// One post with its comments, the like button and the comment form.
pub fn post(csrf: &str, post: &Value, comments: &[Value]) -> Markup {
    let id = post["id"].as_i64().unwrap_or_default();
    html! {
        (post_item(post))
        form.inline method="post" action={ "/posts/" (id) "/like" } {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { "Like" }
        }
        h2 { "Comments" }
        @for c in comments {
            article.comment {
                header { a href={ "/u/" (c["author_username"].as_str().unwrap_or("?")) } { "@" (c["author_username"].as_str().unwrap_or("?")) } }
                p { (c["body"].as_str().unwrap_or("")) }
            }
        }
        form method="post" action={ "/posts/" (id) "/comments" } {
            input type="hidden" name="csrf" value=(csrf);
            label { "Comment" textarea name="body" required maxlength="500" rows="2" {} }
            button type="submit" { "Send" }
        }
    }
}

/// A profile: who they are, follow or unfollow, their posts.
pub fn profile(
    csrf: &str,
    profile: &Value,
    me: bool,
    following: bool,
    items: &[Value],
    next: Option<Next>,
) -> Markup {
    let name = profile["username"].as_str().unwrap_or("?");
    html! {
        section.card.profile {
            h1 { "@" (name) }
            @if let Some(d) = profile["display_name"].as_str().filter(|d| !d.is_empty()) { p { (d) } }
            p.counts {
                a href={ "/u/" (name) "/followers" } { (profile["follower_count"].as_i64().unwrap_or(0)) " followers" }
                " · "
                a href={ "/u/" (name) "/following" } { (profile["following_count"].as_i64().unwrap_or(0)) " following" }
            }
            @if !me {
                form.inline method="post" action={ "/u/" (name) (if following { "/unfollow" } else { "/follow" }) } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (if following { "Unfollow" } else { "Follow" }) }
                }
            }
        }
        h2 { "Posts" }
        (posts(items, next))
    }
}

/// A list of people (followers, following, search results).
pub fn people(title: &str, items: &[Value]) -> Markup {
    html! {
        h1 { (title) }
        ul.people {
            @for p in items {
                li { a href={ "/u/" (p["username"].as_str().unwrap_or("?")) } { "@" (p["username"].as_str().unwrap_or("?")) } }
            }
            @if items.is_empty() { li.empty { "Nobody yet." } }
        }
    }
}

/// People search: the form, and what it found.
pub fn search(q: &str, items: &[Value], error: Option<&str>) -> Markup {
    html! {
        section.card {
            form method="get" action="/search" role="search" {
                label { "Find people" input type="search" name="q" value=(q) maxlength="64"; }
                button type="submit" { "Search" }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
        }
        @if !q.is_empty() && error.is_none() {
            (people(&format!("People matching “{q}”"), items))
        }
    }
}

/// The other members of a conversation, as `@a, @b`.
fn others(c: &Value, me: &str) -> String {
    let names: Vec<String> = c["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|m| *m != me)
        .map(|m| format!("@{m}"))
        .collect();
    if names.is_empty() {
        "yourself".to_owned()
    } else {
        names.join(", ")
    }
}

/// Conversations, newest activity first, and a form to start one.
pub fn conversations(csrf: &str, me: &str, items: &[Value], error: Option<&str>) -> Markup {
    html! {
        section.card {
            form method="post" action="/messages" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Message someone" input name="with" placeholder="username" required maxlength="64" autocomplete="off"; }
                button type="submit" { "Start" }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
        }
        h1 { "Messages" }
        ul.conversations {
            @for c in items {
                li {
                    a href={ "/messages/" (c["id"].as_i64().unwrap_or_default()) } { (others(c, me)) }
                    @if let Some(n) = c["unread"].as_i64().filter(|n| *n > 0) { " " span.unread { (n) " new" } }
                }
            }
            @if items.is_empty() { li.empty { "No conversations yet." } }
        }
    }
}

fn message_item(m: &Value) -> Markup {
    html! {
        article.message data-seq=(m["seq"].as_i64().unwrap_or_default()) {
            header {
                a href={ "/u/" (m["sender"].as_str().unwrap_or("?")) } { "@" (m["sender"].as_str().unwrap_or("?")) }
                " · "
                time datetime=(m["created_at"].as_str().unwrap_or("")) { (short_time(m["created_at"].as_str().unwrap_or(""))) }
            }
            p { (m["body"].as_str().unwrap_or("")) }
        }
    }
}

/// One conversation: its messages oldest first, who is online, the composer. With
/// JavaScript (`data-conversation`) messages, typing and presence arrive live over the
/// socket, and sending goes over it.
pub fn conversation(
    csrf: &str,
    me: &str,
    c: &Value,
    oldest_first: &[Value],
    online: &[String],
) -> Markup {
    let id = c["id"].as_i64().unwrap_or_default();
    let last = oldest_first
        .last()
        .and_then(|m| m["seq"].as_i64())
        .unwrap_or(0);
    html! {
        section.conversation data-conversation=(id) data-last-seq=(last) data-me=(me) data-csrf=(csrf) {
            h1 { "With " (others(c, me)) }
            ul.presence {
                @for m in c["members"].as_array().into_iter().flatten().filter_map(Value::as_str).filter(|m| *m != me) {
                    li data-presence=(m) {
                        "@" (m) ": "
                        span.state { (if online.iter().any(|o| o == m) { "online" } else { "offline" }) }
                    }
                }
            }
            div.messages {
                @for m in oldest_first { (message_item(m)) }
                @if oldest_first.is_empty() { p.empty { "No messages yet: say hello." } }
            }
            p.typing aria-live="polite" {}
            form.send method="post" action={ "/messages/" (id) } {
                input type="hidden" name="csrf" value=(csrf);
                label { "Message" textarea name="body" required maxlength="4000" rows="2" {} }
                button type="submit" { "Send" }
            }
        }
    }
}

/// Something went wrong: what, and the trace that shows it.
pub fn problem(message: &str, trace_id: &str) -> Markup {
    html! {
        section.card {
            h1 { "Something went wrong" }
            p { (message) }
            p.trace { "Trace " code { (trace_id) } ": " code { "socialctl traces " (trace_id) } }
            p { a href="/" { "Back home" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_users_wrote_and_carry_the_trace() {
        let p = serde_json::json!({"id": 7, "author_username": "eve", "body": "<script>alert(1)</script>",
            "created_at": "2026-11-28T09:30:00Z", "like_count": 2, "comment_count": 1, "media": []});
        let page = layout(
            "Home",
            "00-aaaa-bbbb-01",
            Some(&Viewer {
                username: "eve",
                csrf: "tok",
            }),
            home("tok", &[p], None, None),
        );
        let html = page.into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "escaped"
        );
        assert!(!html.contains("<script>alert"), "no injected script");
        assert!(html.contains(r#"<meta name="traceparent" content="00-aaaa-bbbb-01">"#));
        assert!(html.contains(r#"name="csrf" value="tok""#));
        assert!(html.contains(&assets::js_path()));
        assert!(html.contains("2026-11-28 09:30"));
    }
}
