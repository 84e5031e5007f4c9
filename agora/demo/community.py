"""A seeded, platform-neutral simulated community for the offline demo and the tests.

Accounts, categories, threads and posts with times — nothing Discourse-specific, so
other platforms can be rendered from the same community later. Everything comes from
one ``random.Random(seed)`` and fixed dates (never ``now()``): the same seed gives the
same community, byte for byte.

What it holds, on purpose (the marts and the privacy checks need each of these):
monthly newcomer cohorts, power-law activity, newcomers who come back within 30 days
and many who do not, churn and reactivation, bots (negative ids, like Discourse's
system and discobot), staff, questions answered fast, late and never, self-replies,
long threads (> 20 posts), a read-restricted category, unlisted threads, and posts that
must never be published: deleted, withdrawn by their author, hidden after flags, staff
whispers and moderator action notices.

Account ids are 9-digit numbers while thread/post ids stay below 6 digits, so a search
for an account id string in the data directory cannot match some other id, or a run of
digits inside a hex pseudonym, by accident.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

UTC = UTC
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)  # exclusive: the last simulated day is 2026-10-31
ACCOUNT_ID_BASE = 710_400_000
THREAD_ID_BASE = 100
POST_ID_BASE = 10_000

MEMBER, STAFF, BOT, SPAMMER, GONE = "member", "staff", "bot", "spammer", "deleted"
# Post kinds: what the post is. States: whether the public may see it.
REGULAR, WHISPER, ACTION, REPOST = "regular", "whisper", "action", "repost"
PUBLIC, DELETED, AUTHOR_DELETED, HIDDEN = "public", "deleted", "author_deleted", "hidden"


@dataclass(frozen=True)
class Account:
    id: int
    handle: str
    name: str  # display name; may be empty, as on most platforms
    role: str  # member | staff | bot | spammer | deleted (account removed since: nobody to count)
    joined_at: datetime
    private: bool = False  # protected/locked/not indexable on platforms that have it: never public


@dataclass(frozen=True)
class Category:
    id: int
    slug: str
    name: str
    description: str
    restricted: bool = False  # only a group can read it: never public
    parent_id: int | None = None


@dataclass
class Post:
    thread_id: int
    account_id: int
    created_at: datetime
    text: str
    reply_to: int | None = None  # post number replied to; None = to the thread
    kind: str = REGULAR  # regular | whisper (staff-only) | action (moderator notice)
    state: str = PUBLIC  # public | deleted | author_deleted | hidden
    action_code: str | None = None
    id: int = 0  # assigned once all posts exist, in creation order (as platforms do)
    number: int = 0  # position in the thread, 1 = the opening post


@dataclass
class Thread:
    category_id: int
    account_id: int
    created_at: datetime
    title: str
    outcome: str  # question: fast | late | never; or discussion | intro | announcement | staff | welcome
    posts: list[Post] = field(default_factory=list)
    listed: bool = True  # False = unlisted by staff: not public
    pinned: bool = False
    pinned_globally: bool = False
    closed: bool = False
    id: int = 0

    @property
    def last_activity(self) -> datetime:
        times = [p.created_at for p in self.posts if p.kind == REGULAR]
        return max(times) if times else self.created_at


@dataclass
class Community:
    name: str
    seed: int
    accounts: list[Account]
    categories: list[Category]
    threads: list[Thread]
    start: datetime = START
    end: datetime = END

    def account(self, account_id: int) -> Account:
        return self._by_id()[account_id]

    def _by_id(self) -> dict[int, Account]:
        cache = self.__dict__.get("_accounts_by_id")
        if cache is None:
            cache = self.__dict__["_accounts_by_id"] = {a.id: a for a in self.accounts}
        return cache

    def posts(self) -> list[Post]:
        return [p for t in self.threads for p in t.posts]

    def handles(self) -> list[str]:
        """Every person's handle, display name and account-id string: none may ever reach disk.

        Bots are left out: they are the platform's own accounts, not people, and "system"
        is a word the team's own texts may well contain.
        """
        out: list[str] = []
        for a in self.accounts:
            if a.role == BOT:
                continue
            out.append(a.handle)
            if a.name:
                out.append(a.name)
            if a.id > 0:
                out.append(str(a.id))
        return out

    def staff_ids(self) -> list[int]:
        return [a.id for a in self.accounts if a.role == STAFF]


# -- names ------------------------------------------------------------------------------

FIRST_NAMES = (
    "Maria",
    "José",
    "Aisha",
    "Wei",
    "Lukas",
    "Priya",
    "Kenji",
    "Fatima",
    "Olga",
    "Mateo",
    "Chiara",
    "Tomasz",
    "Amara",
    "Søren",
    "Yuki",
    "Rahul",
    "Elena",
    "Kwame",
    "Ingrid",
    "Diego",
    "Leila",
    "Hannah",
    "Ibrahim",
    "Mei",
    "Jonas",
    "Zanele",
    "Camille",
    "Arjun",
    "Noor",
    "Pavel",
    "Lucía",
    "Emeka",
    "Sofia",
    "Thanh",
    "Anders",
    "Gabriela",
    "Hiroshi",
    "Nadia",
    "Oskar",
    "Chen",
    "Isabel",
    "Kofi",
    "Anya",
    "Rafael",
    "Sana",
    "Henrik",
    "Valentina",
    "Dmitri",
    "Ayesha",
    "Bruno",
    "Marta",
    "Tariq",
    "Freya",
    "Joaquín",
    "Nia",
    "Stefan",
    "Ana",
    "Yusuf",
    "Lena",
    "Tiago",
    "Miriam",
    "Oluwaseun",
    "Katarzyna",
    "Ravi",
    "Émilie",
    "Andrés",
    "Hana",
    "Nikolai",
    "Amina",
    "Felix",
)
LAST_NAMES = (
    "Kowalski",
    "García",
    "Okafor",
    "Zhang",
    "Müller",
    "Sharma",
    "Tanaka",
    "Haddad",
    "Ivanova",
    "Rossi",
    "Nowak",
    "Mensah",
    "Lindqvist",
    "Nakamura",
    "Patel",
    "Fernández",
    "Boateng",
    "Johansson",
    "Moreau",
    "Kim",
    "Nguyen",
    "Schmidt",
    "Silva",
    "Adeyemi",
    "Novák",
    "Hassan",
    "Petrov",
    "Costa",
    "Dubois",
    "Yamamoto",
    "Andersen",
    "López",
    "Chowdhury",
    "Wójcik",
    "Bianchi",
    "Eze",
    "Horvat",
    "Jensen",
    "Santos",
    "Fischer",
    "Abubakar",
    "Lee",
    "Kaur",
    "Popescu",
    "Martins",
    "Weber",
    "Diallo",
    "Larsen",
    "Romero",
    "Sato",
)


def _ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()


def _handle(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    f, last_ascii = _ascii(first), _ascii(last)
    patterns = (
        f"{f}_{last_ascii}",
        f"{f}{last_ascii[0]}{rng.randint(10, 99)}",
        f"{f[0]}{last_ascii}",
        f"{f}.{last_ascii}",
        f"{last_ascii}{f[:2]}",
        f"{f}-dev",
        f"the_{f}{rng.randint(1, 9)}",
        f"{f}{rng.randint(1980, 2005)}",
    )
    handle = rng.choice(patterns)
    while len(handle) < 6 or handle in taken:
        handle = f"{handle}{rng.randint(0, 9)}"
    taken.add(handle)
    return handle


# -- content ----------------------------------------------------------------------------

CATEGORIES = (
    Category(1, "uncategorized", "Uncategorized", "Topics that need a category."),
    Category(2, "general", "General", "Anything about the project."),
    Category(3, "help", "Help", "Ask for help installing, configuring and running the project."),
    Category(4, "installation", "Installation", "Install and upgrade questions.", parent_id=3),
    Category(5, "announcements", "Announcements", "Releases and news from the team."),
    Category(6, "introductions", "Introductions", "Say hello!"),
    Category(7, "events", "Events", "Meetups, talks and community calls."),
    Category(8, "staff-lounge", "Staff lounge", "Private to the team.", restricted=True),
)
HELP_CATEGORIES = (3, 4)
RESTRICTED_CATEGORY = 8

SUBJECTS = (
    "SSO with Keycloak",
    "the Docker image",
    "the Helm chart",
    "PostgreSQL 17",
    "the REST API",
    "webhooks",
    "the CLI",
    "plugins",
    "the search index",
    "email notifications",
    "backups",
    "the upgrade to 3.0",
    "rate limits",
    "the Python SDK",
    "dark mode",
    "the documentation",
    "LDAP groups",
    "S3 storage",
    "the Kubernetes operator",
    "translations",
)
QUESTION_TITLES = (
    "How do I configure {s}?",
    "Install fails with a permission error when setting up {s}",
    "Upgrade broke {s}: what changed?",
    "Is there a way to automate {s}?",
    "Timeout errors with {s} under load",
    "Best practice for {s} in production?",
    "{s} returns 500 after the last release",
    "Setup question about {s} on ARM",
)
DISCUSSION_TITLES = (
    "Show and tell: what we built with {s}",
    "Proposal: rethink {s}",
    "Roadmap thoughts on {s}",
    "Feedback wanted: new design for {s}",
    "Anyone else running {s} at scale?",
    "Tips and tricks for {s}",
)
EVENT_TITLES = (
    "Community call: {m}",
    "Meetup in {c}: {m}",
    "Call for talks: {m} conference",
    "Workshop recording: {m}",
)
CITIES = ("Berlin", "Lagos", "São Paulo", "Bangalore", "Toronto", "Kraków", "Nairobi", "Osaka")
QUESTION_BODIES = (
    "I followed the install docs but {s} keeps failing. Logs attached. What am I missing?",
    "After the upgrade, {s} stopped working. Any idea where to look?",
    "Is {s} supposed to work with the default setup, or do I need extra configuration?",
)
ANSWERS = (
    "You need to set the environment variable first, then restart the service. See the docs section on {s}.",
    "This is a known issue with {s}; the workaround is to pin the previous version until the fix ships.",
    "Check the permissions of the data directory: {s} runs as a non-root user since 2.4.",
    "Could you share your config (without secrets)? {s} behaves differently behind a proxy.",
)
FOLLOWUPS = (
    "Thanks {h}, that worked!",
    "Same problem here, the workaround from {h} fixed it for me.",
    "+1, we hit this too with {s}.",
    "I opened an issue for this so it does not get lost.",
    "Good point {h}. We ended up doing it slightly differently, but same idea.",
)
BUMPS = ("Any ideas, anyone?", "Bump: still stuck on this.", "Still looking for help with {s}.")
SELF_SOLVED = ("Solved it myself: it was a typo in my config. Leaving this here for others.",)
INTROS = (
    "Hi all, I'm {n}. I work on data pipelines and found the project through a conference talk.",
    "Hello! {n} here, long-time lurker, first post. Looking forward to contributing.",
    "Hey everyone, I'm {n}. We're evaluating the project at work.",
)
WELCOMES = ("Welcome {h}! Glad to have you here.", "Hi {h}, welcome aboard. The help category is a good start.")
DISCOBOT = "Hi {h}! I'm discobot. Reply to this message to start the new user tutorial."
SPAM = "Cheap watches and best deals!!! Visit my site now."
STAFF_TOPICS = (
    "Moderation queue review {m}",
    "Planning the next community call ({m})",
    "Sponsor contacts for {m}",
)
WHISPERS = ("Looks like a duplicate of an older topic, I'll merge it later.", "Pinging the docs team about this one.")


def _mention(handle: str) -> str:
    # What a platform renders for "@handle": real content the connector must never store.
    return f'<a class="mention" href="/u/{handle}">@{handle}</a>'


def _month_starts() -> list[datetime]:
    months, m = [], START
    while m < END:
        months.append(m)
        m = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


class _Builder:
    """Generates the community step by step; only `build_community` is public."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seed = seed
        self.accounts: list[Account] = []
        self.threads: list[Thread] = []
        self.engagement: dict[int, float] = {}
        self._next_id = ACCOUNT_ID_BASE
        self._handles: set[str] = set()
        self.handles_by_id: dict[int, str] = {}
        self.staff_ids: list[int] = []
        self.regulars: list[tuple[int, float, datetime, datetime]] = []

    # accounts ---------------------------------------------------------------------

    def new_account(self, role: str, joined: datetime) -> Account:
        rng = self.rng
        self._next_id += rng.randint(1, 4)  # gaps: accounts that signed up and never posted
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = "" if rng.random() < 0.12 else f"{first} {last}"
        acc = Account(self._next_id, _handle(rng, first, last, self._handles), name, role, joined)
        self.accounts.append(acc)
        self.handles_by_id[acc.id] = acc.handle
        return acc

    def when(self, day_start: datetime, days: float = 1.0) -> datetime:
        """A time within `days` from `day_start`, leaning towards waking hours (UTC-ish)."""
        rng = self.rng
        day = day_start + timedelta(days=int(rng.random() * days))
        hour = min(23, max(0, int(rng.gauss(14, 4.5))))
        return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60), microsecond=0) + timedelta(
            milliseconds=rng.randrange(1000)
        )

    # members' own activity ----------------------------------------------------------

    def member_timeline(self, first: datetime, eng: float) -> list[datetime]:
        """Contribution times: maybe a return within 30 days, then monthly spells with churn and reactivation."""
        rng = self.rng
        times = [first]
        p_return = min(0.85, 0.08 + 0.15 * math.log(eng) + (0.2 if eng > 2.5 else 0))
        if rng.random() < p_return:
            times.append(first + timedelta(days=rng.uniform(1.05, 29), hours=rng.uniform(0, 6)))
        elif rng.random() < 0.22:  # came back, but only after the 30-day window
            times.append(first + timedelta(days=rng.uniform(35, 150)))
        if len(times) > 1 and times[-1] - first < timedelta(days=30):
            churn = max(0.08, 0.6 - 0.12 * eng)  # monthly hazard; engaged members stay longer
            month = first + timedelta(days=30)
            active = True
            while month < END:
                if active and rng.random() < churn:
                    active = False
                elif not active and rng.random() < 0.05:  # reactivation after a break
                    active = True
                if active:
                    for _ in range(max(1, int(rng.expovariate(1 / (0.3 * eng))))):
                        times.append(month + timedelta(days=rng.uniform(0, 30), hours=rng.uniform(0, 24)))
                month += timedelta(days=30)
        return sorted(t for t in times if t < END)

    # threads ------------------------------------------------------------------------

    def thread(self, category: int, author: int, at: datetime, title: str, outcome: str, text: str) -> Thread:
        t = Thread(category, author, at, title, outcome)
        t.posts.append(Post(0, author, at, f"<p>{text}</p>"))
        self.threads.append(t)
        return t

    def reply(self, t: Thread, author: int, at: datetime, text: str, reply_to: int | None = None, **kw) -> Post:
        p = Post(0, author, at, f"<p>{text}</p>", reply_to=reply_to, **kw)
        t.posts.append(p)
        return p

    def responder(self, at: datetime, exclude: int) -> int:
        """Who answers at `at`: staff or an active regular, weighted by engagement (power law)."""
        rng = self.rng
        if rng.random() < 0.35:
            return rng.choice(self.staff_ids)
        pool = [(aid, eng) for aid, eng, first, last in self.regulars if aid != exclude and first < at <= last]
        if not pool:
            return rng.choice(self.staff_ids)
        ids, weights = zip(*pool, strict=True)
        return rng.choices(ids, weights=weights)[0]

    def set_regulars(self, timelines: dict[int, list[datetime]]) -> None:
        """Members who answer others: engaged ones who came back, from their second post until they leave.

        Only members who return on their own answer others, so answering never turns a
        one-off newcomer into a returning one.
        """
        self.regulars = [
            (aid, eng, times[1], times[-1] + timedelta(days=14))
            for aid, times in timelines.items()
            if (eng := self.engagement[aid]) > 1.8 and len(times) >= 3
        ]

    def question(self, author: int, at: datetime) -> Thread:
        rng = self.rng
        s = rng.choice(SUBJECTS)
        outcome = rng.choices(("fast", "late", "never"), weights=(0.55, 0.2, 0.25))[0]
        t = self.thread(
            rng.choice(HELP_CATEGORIES),
            author,
            at,
            rng.choice(QUESTION_TITLES).format(s=s),
            outcome,
            rng.choice(QUESTION_BODIES).format(s=s),
        )
        if outcome == "never":
            if rng.random() < 0.25:  # the author bumps their own question: a self-reply, not a response
                self.reply(t, author, at + timedelta(days=rng.uniform(2, 6)), rng.choice(BUMPS).format(s=s))
            if rng.random() < 0.1:
                self.reply(t, author, at + timedelta(days=rng.uniform(7, 20)), SELF_SOLVED[0])
            return t
        if outcome == "fast":
            delay = timedelta(hours=min(40.0, rng.lognormvariate(math.log(3), 0.9)))
        else:
            delay = timedelta(days=rng.uniform(2.5, 14))
        answer_at = at + delay
        who = self.responder(answer_at, author)
        helper = self.account_handle(who)
        self.reply(t, who, answer_at, rng.choice(ANSWERS).format(s=s))
        if rng.random() < 0.06:  # staff leave a note only staff can see
            staff = rng.choice(self.staff_ids)
            self.reply(t, staff, answer_at + timedelta(minutes=rng.uniform(5, 300)), rng.choice(WHISPERS), kind=WHISPER)
        clock = answer_at
        if rng.random() < 0.35:  # the asker thanks the helper: a self-reply in their own thread
            clock += timedelta(hours=rng.uniform(0.5, 36))
            self.reply(t, author, clock, FOLLOWUPS[0].format(h=_mention(helper)), reply_to=2)
        for _ in range(int(rng.expovariate(1 / 1.2))):
            clock += timedelta(hours=rng.uniform(1, 72))
            other = self.responder(clock, author)
            self.reply(
                t,
                other,
                clock,
                rng.choice(FOLLOWUPS).format(h=_mention(helper), s=s),
                reply_to=rng.choice((None, None, 1, len(t.posts))),
            )
        if rng.random() < 0.05:
            staff = rng.choice(self.staff_ids)
            t.closed = True
            self.reply(
                t, staff, clock + timedelta(days=rng.uniform(1, 10)), "", kind=ACTION, action_code="closed.enabled"
            )
        return t

    def discussion(self, author: int, at: datetime) -> Thread:
        rng = self.rng
        s = rng.choice(SUBJECTS)
        t = self.thread(
            2, author, at, rng.choice(DISCUSSION_TITLES).format(s=s), "discussion", f"What do you think about {s}?"
        )
        n = 25 + rng.randrange(40) if rng.random() < 0.1 else int(rng.expovariate(1 / 3))
        clock = at
        for _ in range(n):
            clock += timedelta(hours=rng.expovariate(1 / 14))
            if clock >= END:
                break
            who = self.responder(clock, -1)
            prev = t.posts[-1].account_id
            text = rng.choice(FOLLOWUPS).format(h=_mention(self.account_handle(prev)), s=s)
            self.reply(t, who, clock, text, reply_to=rng.choice((None, len(t.posts), 1)))
        return t

    def account_handle(self, account_id: int) -> str:
        return self.handles_by_id[account_id]

    def join_conversation(self, author: int, at: datetime) -> bool:
        """A member's reply into a recent, already answered conversation (never a first response)."""
        rng = self.rng
        cutoff = at - timedelta(days=14)
        recent = [
            t
            for t in self.threads[-80:]
            if cutoff < t.created_at < at
            and t.outcome in ("fast", "late", "discussion")
            and t.account_id != author
            and len(t.posts) > 1
            and t.posts[1].created_at < at
        ]
        if not recent:
            return False
        t = rng.choice(recent)
        s = rng.choice(SUBJECTS)
        helper = self.account_handle(t.posts[-1].account_id)
        self.reply(t, author, at, rng.choice(FOLLOWUPS).format(h=_mention(helper), s=s), reply_to=rng.choice((None, 1)))
        return True


def build_community(seed: int = 42, name: str = "Demo community") -> Community:
    """The whole community for `seed`: a few hundred accounts, a few thousand posts."""
    b = _Builder(seed)
    rng = b.rng
    system = Account(-1, "system", "system", BOT, START)
    discobot = Account(-2, "discobot", "discobot", BOT, START)
    b.accounts += [system, discobot]
    b.handles_by_id.update({system.id: system.handle, discobot.id: discobot.handle})
    staff = [b.new_account(STAFF, START) for _ in range(3)]
    b.staff_ids = [s.id for s in staff]

    # Discourse-style seeded content: a pinned welcome and one "About" topic per category, by system.
    welcome = b.thread(
        2,
        system.id,
        START + timedelta(minutes=5),
        "Welcome to Demo community",
        "welcome",
        "Welcome! Start in the help category.",
    )
    welcome.pinned = welcome.pinned_globally = True
    for c in CATEGORIES:
        about = b.thread(
            c.id,
            system.id,
            START + timedelta(minutes=1, seconds=c.id),
            f"About the {c.name} category",
            "about",
            c.description,
        )
        about.pinned = True

    # Members: a founding cohort, then monthly cohorts that grow slowly.
    members: list[tuple[Account, datetime]] = []
    for i, month in enumerate(_month_starts()):
        size = max(6, int(round((24 if i == 0 else 10 + 0.45 * i) + rng.gauss(0, 2))))
        days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
        for _ in range(size):
            first = b.when(month, days)
            acc = b.new_account(MEMBER, first)
            eng = min(25.0, rng.paretovariate(1.25))
            b.engagement[acc.id] = eng
            members.append((acc, first))
    timelines = {}
    for acc, first in members:
        times = b.member_timeline(first, b.engagement[acc.id])
        timelines[acc.id] = times
    b.set_regulars(timelines)

    # Every member's own contributions, in time order across the community.
    events = sorted((t, acc.id, k) for acc, _ in members for k, t in enumerate(timelines[acc.id]))
    for at, aid, k in events:
        roll = rng.random()
        if k == 0:
            if roll < 0.25:
                intro = b.thread(
                    6, aid, at, "Hello from a new member", "intro", rng.choice(INTROS).format(n=b.account_handle(aid))
                )
                b.reply(
                    intro,
                    discobot.id,
                    at + timedelta(seconds=rng.uniform(20, 90)),
                    DISCOBOT.format(h=_mention(b.account_handle(aid))),
                )
                if rng.random() < 0.6:
                    who = b.responder(at + timedelta(hours=5), aid)
                    b.reply(
                        intro,
                        who,
                        at + timedelta(hours=rng.uniform(1, 30)),
                        rng.choice(WELCOMES).format(h=_mention(b.account_handle(aid))),
                    )
            elif roll < 0.85 or not b.join_conversation(aid, at):
                b.question(aid, at)
        elif roll < 0.2:
            b.question(aid, at)
        elif roll < 0.28:
            b.discussion(aid, at)
        elif not b.join_conversation(aid, at):
            b.question(aid, at)

    # Team content: announcements, events, and the read-restricted staff lounge.
    for month in _month_starts():
        author = rng.choice(staff).id
        ann = b.thread(
            5,
            author,
            b.when(month + timedelta(days=2)),
            f"Release notes {month:%B %Y}",
            "announcement",
            "A new release is out: upgrade notes inside.",
        )
        clock = ann.created_at
        for _ in range(int(rng.expovariate(1 / 2.5))):
            clock += timedelta(hours=rng.expovariate(1 / 20))
            b.reply(ann, b.responder(clock, author), clock, "Thanks for the release! The upgrade went smoothly.")
        ev = b.thread(
            7,
            rng.choice(staff).id,
            b.when(month + timedelta(days=10), 5),
            rng.choice(EVENT_TITLES).format(m=f"{month:%B}", c=rng.choice(CITIES)),
            "event",
            "Join us! Agenda and meetup link inside.",
        )
        for _ in range(rng.randrange(4)):
            clock = ev.created_at + timedelta(hours=rng.uniform(1, 96))
            b.reply(ev, b.responder(clock, ev.account_id), clock, "Count me in!")
        for _ in range(rng.randint(2, 4)):
            at = b.when(month, 27)
            lounge = b.thread(
                RESTRICTED_CATEGORY,
                rng.choice(staff).id,
                at,
                rng.choice(STAFF_TOPICS).format(m=f"{month:%B}"),
                "staff",
                "Notes for the team only.",
            )
            for _ in range(rng.randint(1, 5)):
                at += timedelta(hours=rng.uniform(1, 48))
                b.reply(lounge, rng.choice(staff).id, at, "Agreed, let's discuss on the call.")
        if rng.random() < 0.25:  # a system notice in the staff lounge
            b.reply(lounge, system.id, at + timedelta(hours=1), "Reminder: review the flagged posts queue.")

    # Spam: accounts whose only posts are deleted by staff; they must leave no trace.
    for month in _month_starts()[::2]:
        spammer = b.new_account(SPAMMER, b.when(month, 25))
        t = b.thread(1, spammer.id, spammer.joined_at, "Best deals on watches", "spam", SPAM)
        t.posts[0].state = DELETED

    # Posts nobody may see: withdrawn by their author, hidden after flags; unlisted threads.
    for t in b.threads:
        if t.category_id == RESTRICTED_CATEGORY or t.outcome in ("spam", "about", "welcome"):
            continue
        for p in t.posts[1:]:
            if p.kind != REGULAR or p.account_id <= 0:
                continue
            r = rng.random()
            if r < 0.012:
                p.state = AUTHOR_DELETED
            elif r < 0.022:
                p.state = HIDDEN
            elif r < 0.03:
                p.state = DELETED
        if t.outcome in ("fast", "late", "discussion") and rng.random() < 0.012:
            t.listed = False

    # Bots post in public too: system closes long-idle questions (an action notice).
    for t in b.threads:
        if t.outcome == "never" and rng.random() < 0.2:
            b.reply(t, system.id, t.created_at + timedelta(days=60), "", kind=ACTION, action_code="autoclosed.enabled")
            t.closed = True

    # Drop what falls after the simulated period; number threads and posts in creation order.
    for t in b.threads:
        t.posts = [p for p in t.posts if p.created_at < END]
        t.posts.sort(key=lambda p: p.created_at)
    threads = sorted((t for t in b.threads if t.created_at < END), key=lambda t: t.created_at)
    for i, t in enumerate(threads):
        t.id = THREAD_ID_BASE + i
        for n, p in enumerate(t.posts, start=1):
            p.thread_id, p.number = t.id, n
    # reply_to points at post numbers that must exist and come earlier.
    for t in threads:
        for p in t.posts:
            if p.reply_to is not None and not 1 <= p.reply_to < p.number:
                p.reply_to = None
    for i, p in enumerate(
        sorted((p for t in threads for p in t.posts), key=lambda p: (p.created_at, p.thread_id, p.number))
    ):
        p.id = POST_ID_BASE + i
    return Community(name=name, seed=seed, accounts=b.accounts, categories=list(CATEGORIES), threads=threads)


# -- the other platforms -----------------------------------------------------------------

#: Account ids per platform: independent (nobody is linked across platforms), 9 digits like
#: the forum's, in ranges of their own so no id string of one platform matches another's.
PLATFORM_ID_BASES = {
    "github": 530_100_000,
    "mediawiki": 640_200_000,
    "stackexchange": 820_300_000,
    "x": 930_400_000,
    "mastodon": 460_500_000,
}
PLATFORM_SUBJECTS = SUBJECTS


def build_platform(platform: str, seed: int = 42, cohort: float = 7.0, id_base: int | None = None) -> Community:
    """A smaller community on `platform`: its own accounts, threads and replies, same dates.

    Monthly newcomer cohorts of about `cohort` members (so every month has at least k_min=5
    active members), engaged regulars and staff who answer, and a few items no connector may
    land: `Post.state == HIDDEN` (hidden / pending / withheld / not public, per platform),
    `REPOST` posts (retweets, boosts), posts by since-deleted accounts (`GONE`) and accounts
    that are `private` (protected, locked, opted out of indexing).
    """
    b = _Builder(f"{seed}:{platform}")  # a string seed: the same for every run, independent per platform
    b._next_id = PLATFORM_ID_BASES[platform] if id_base is None else id_base
    rng = b.rng
    staff = [b.new_account(STAFF, START) for _ in range(2)]
    b.staff_ids = [s.id for s in staff]
    members: list[tuple[Account, datetime]] = []
    for i, month in enumerate(_month_starts()):
        size = max(6, int(round(cohort + 0.1 * i + rng.gauss(0, 1.2))))
        days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
        for _ in range(size):
            first = b.when(month, days)
            acc = b.new_account(MEMBER, first)
            b.engagement[acc.id] = min(25.0, rng.paretovariate(1.25))
            members.append((acc, first))
    timelines = {acc.id: b.member_timeline(first, b.engagement[acc.id]) for acc, first in members}
    b.set_regulars(timelines)
    events = sorted((t, acc.id, k) for acc, _ in members for k, t in enumerate(timelines[acc.id]))
    for at, aid, k in events:
        if k == 0 or rng.random() < 0.35 or not b.join_conversation(aid, at):
            _platform_thread(b, aid, at)
    # Accounts whose posts must not be public, and accounts deleted since they posted.
    hidden_accounts: set[int] = set()
    for month in _month_starts()[::3]:
        private = b.new_account(MEMBER, b.when(month, 25))
        private = Account(private.id, private.handle, private.name, MEMBER, private.joined_at, private=True)
        b.accounts[-1] = private
        hidden_accounts.add(private.id)
        _platform_thread(b, private.id, private.joined_at)
    for month in _month_starts()[1::4]:
        gone = b.new_account(GONE, b.when(month, 25))
        _platform_thread(b, gone.id, gone.joined_at)
    for t in b.threads:
        for p in t.posts[1:]:  # an opening post stays: its thread is the platform's unit
            if p.account_id in hidden_accounts:
                continue
            r = rng.random()
            if r < 0.02:
                p.state = HIDDEN
            elif r < 0.035:
                p.kind = REPOST
    threads = sorted((t for t in b.threads if t.created_at < END), key=lambda t: t.created_at)
    for t in threads:
        t.posts = sorted((p for p in t.posts if p.created_at < END), key=lambda p: p.created_at)
    for i, t in enumerate(threads):
        t.id = THREAD_ID_BASE + i
        for n, p in enumerate(t.posts, start=1):
            p.thread_id, p.number = t.id, n
            if p.reply_to is not None and not 1 <= p.reply_to < n:
                p.reply_to = None
    ordered = sorted((p for t in threads for p in t.posts), key=lambda p: (p.created_at, p.thread_id, p.number))
    for i, p in enumerate(ordered):
        p.id = POST_ID_BASE + i
    return Community(f"Demo community on {platform}", seed, b.accounts, [], threads)


def _platform_thread(b: _Builder, author: int, at: datetime) -> Thread:
    """A question or discussion with replies from staff and regulars (fast, late or none)."""
    rng = b.rng
    s = rng.choice(PLATFORM_SUBJECTS)
    question = rng.random() < 0.7
    title = rng.choice(QUESTION_TITLES if question else DISCUSSION_TITLES).format(s=s)
    body = rng.choice(QUESTION_BODIES).format(s=s) if question else f"What do you think about {s}?"
    outcome = rng.choices(("fast", "late", "never"), weights=(0.55, 0.25, 0.2))[0] if question else "discussion"
    t = b.thread(0, author, at, title, outcome, body)
    if outcome == "never":
        if rng.random() < 0.3:
            b.reply(t, author, at + timedelta(days=rng.uniform(1, 5)), rng.choice(BUMPS).format(s=s))
        return t
    clock = at + (
        timedelta(hours=min(40.0, rng.lognormvariate(math.log(4), 0.9)))
        if outcome in ("fast", "discussion")
        else timedelta(days=rng.uniform(2.5, 12))
    )
    who = b.responder(clock, author)
    b.reply(t, who, clock, rng.choice(ANSWERS).format(s=s), reply_to=1)
    for _ in range(int(rng.expovariate(1 / 1.5))):
        clock += timedelta(hours=rng.uniform(1, 60))
        other = author if rng.random() < 0.3 else b.responder(clock, author)
        b.reply(
            t, other, clock, rng.choice(FOLLOWUPS).format(h="@" + b.account_handle(who), s=s), reply_to=len(t.posts)
        )
    return t
