"""OPML export and import of follows."""

from __future__ import annotations

from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET
import pytest

from bot.opml import OpmlError, OpmlRead, Outline, read_opml, write_opml

CREATED = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)

FOLLOWS = [
    Outline("feed", "https://jobs.example/feed.xml?lang=fr&remote=1", 'Acme <jobs> & "co"'),
    Outline("feed", "https://mastodon.example/@acme.rss"),
    Outline("feed", "https://bsky.app/profile/acme.bsky.social/rss", "Acme on Bluesky"),
    Outline("x", "acme_jobs"),
    Outline("x", "RecruteurTech", "Recruteur Tech"),
    Outline("category", "python"),
    Outline("category", "data", "Données"),
]

FEED_READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Subscriptions of marie in Inoreader</title></head>
  <body>
    <outline text="Jobs" title="Jobs">
      <outline text="Acme careers" title="Acme careers" type="rss"
        xmlUrl="https://jobs.example/feed.xml" htmlUrl="https://jobs.example/"/>
      <outline text="Welcome to the Jungle" title="Welcome to the Jungle" type="rss"
        xmlUrl="https://wttj.example/rss"/>
      <outline text="Nested" title="Nested">
        <outline type="rss" text="Deep feed" xmlUrl="https://deep.example/atom"/>
      </outline>
    </outline>
    <outline text="Social" title="Social">
      <outline text="@acme_jobs" type="link" url="https://twitter.com/acme_jobs"/>
      <outline text="A web page" type="link" url="https://blog.example/about"/>
      <outline text="Search page" type="link" htmlUrl="https://x.com/search?q=python"/>
    </outline>
    <outline text="Empty folder"/>
    <outline type="rss" text="Acme careers again" xmlUrl="https://jobs.example/feed.xml"/>
  </body>
</opml>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><head/><body><outline type="rss" text="&lol9;" xmlUrl="https://a.example/"/>
</body></opml>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><head/><body><outline type="rss" text="&secret;" xmlUrl="https://a.example/"/>
</body></opml>
"""


def test_an_export_reads_back_as_the_same_follows() -> None:
    document = write_opml("jobrelay: follows of Marie", FOLLOWS, created=CREATED)
    assert read_opml(document) == OpmlRead(FOLLOWS, [])


def test_an_export_is_opml_2_that_feed_readers_understand() -> None:
    document = write_opml("Mes abonnements <jobrelay>", FOLLOWS, created=CREATED)
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = SafeET.fromstring(document)
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "Mes abonnements <jobrelay>"
    assert root.findtext("head/dateCreated") == "Tue, 04 Mar 2025 09:30:00 +0000"
    first, mastodon, _, x_account, *_, category = root.iter("outline")
    assert first.attrib == {
        "type": "rss",
        "text": 'Acme <jobs> & "co"',
        "title": 'Acme <jobs> & "co"',
        "xmlUrl": "https://jobs.example/feed.xml?lang=fr&remote=1",
    }
    assert mastodon.get("xmlUrl") == "https://mastodon.example/@acme.rss"
    assert mastodon.get("text") == "https://mastodon.example/@acme.rss"
    assert x_account.attrib == {
        "type": "link",
        "text": "@acme_jobs",
        "title": "@acme_jobs",
        "url": "https://x.com/acme_jobs",
        "htmlUrl": "https://x.com/acme_jobs",
    }
    assert category.get("type") == "jobrelay-category"
    assert category.get("category") == "data"
    assert "Données".encode() in document


def test_a_feed_reader_export_is_flattened_and_unusable_entries_reported() -> None:
    read = read_opml(FEED_READER_EXPORT)
    assert read.outlines == [
        Outline("feed", "https://jobs.example/feed.xml", "Acme careers"),
        Outline("feed", "https://wttj.example/rss", "Welcome to the Jungle"),
        Outline("feed", "https://deep.example/atom", "Deep feed"),
        Outline("x", "acme_jobs"),
    ]
    assert read.skipped == ["A web page", "Search page"]


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"not xml at all",
        b"",
        b"<!DOCTYPE html><html><head><title>Feeds</title></head><body><p>Hi</p></body></html>",
        b"<html><body><outline xmlUrl='https://a.example/'/></body></html>",
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>',
        b'<?xml version="1.0"?><opml version="2.0"><head><title>no body</title></head></opml>',
        b"<opml><body><outline text='unclosed'></body></opml>",
    ],
)
def test_files_that_are_not_opml_are_malformed(data: bytes) -> None:
    with pytest.raises(OpmlError) as caught:
        read_opml(data)
    assert caught.value.code == "malformed"
    assert isinstance(caught.value, ValueError)


def test_an_opml_without_subscriptions_is_empty() -> None:
    for data in (
        b'<opml version="2.0"><head/><body/></opml>',
        b'<opml version="2.0"><head/><body><outline text="Folder"><outline text="Sub"/>'
        b"</outline></body></opml>",
    ):
        with pytest.raises(OpmlError) as caught:
            read_opml(data)
        assert caught.value.code == "empty"


def test_too_many_outlines_are_refused() -> None:
    outlines = [Outline("feed", f"https://jobs.example/{number}.xml") for number in range(501)]
    document = write_opml("big", outlines, created=CREATED)
    with pytest.raises(OpmlError) as caught:
        read_opml(document)
    assert caught.value.code == "too_many"
    assert len(read_opml(document, max_outlines=501).outlines) == 501


def test_x_profiles_are_read_from_any_x_or_twitter_address() -> None:
    data = b"""<opml version="2.0"><head/><body>
      <outline text="a" url="https://x.com/Acme_Jobs"/>
      <outline text="b" htmlUrl="https://mobile.twitter.com/@techjobs/"/>
      <outline text="c" url="https://x.com/i/lists/123"/>
      <outline text="d" url="https://x.com/way_too_long_handle_here"/>
    </body></opml>"""
    read = read_opml(data)
    assert read.outlines == [Outline("x", "Acme_Jobs", "a"), Outline("x", "techjobs", "b")]
    assert read.skipped == ["c", "d"]


def test_an_unknown_outline_kind_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="unknown outline kind"):
        write_opml("t", [Outline("mastodon", "@a@b.example")], created=CREATED)
