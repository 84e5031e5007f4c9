"""The demo team's own files: survey answers, the feedback log, learnings, team activity.

Seeded like the community, with fixed dates. One survey quarter deliberately has fewer
respondents than k_min (5), so the NPS mart has something to suppress. Volumes are those
of a small DevRel team: about six feedback items a month (so some months fall below k_min
and the feedback loop is read by quarter), two to three team activities a week, and a
learning or two a month. The texts are
written like a team would write them and hold no personal data (the landing contract
scans them for e-mail addresses, phone numbers and @handles).
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

# Respondents per quarter; 2025-Q3 is below k_min on purpose.
SURVEY_QUARTERS = {
    date(2025, 1, 1): 12,
    date(2025, 4, 1): 9,
    date(2025, 7, 1): 4,
    date(2025, 10, 1): 14,
    date(2026, 1, 1): 11,
    date(2026, 4, 1): 10,
    date(2026, 7, 1): 13,
    date(2026, 10, 1): 6,
}
CHANNELS = ("forum", "survey", "meetup", "chat")
FEEDBACK = (
    "Installation docs skip the database step",
    "Wants a dark mode in the web interface",
    "Upgrade guide to 3.0 is confusing",
    "Search results miss recent topics",
    "Asks for a Helm chart with sane defaults",
    "Email notifications arrive twice",
    "Would like more community calls in Asian time zones",
    "API reference lacks examples for webhooks",
    "Onboarding: unclear where newcomers should start",
    "Plugin system needs a stable interface",
    "Backups to S3 fail silently",
    "Meetup recordings are hard to find",
)
LEARNINGS = [
    {
        "date": date(2025, 3, 14),
        "title": "Newcomers who get an answer within a day come back",
        "text": "Looking at Q1, questions answered within 24 hours were followed by a second post from the asker far "
        "more often than questions answered later. We set up a rota so that help topics get a first answer fast.",
        "tags": ["onboarding", "support"],
        "kpis": ["median_hours_to_first_response", "returning_newcomer_rate"],
    },
    {
        "date": date(2025, 6, 2),
        "title": "The welcome thread alone does not retain people",
        "text": "Introductions get warm replies but few of those newcomers post again. Pointing them to a concrete "
        "first task (a docs fix, a good-first-issue) worked better in the pilot.",
        "tags": ["onboarding"],
        "kpis": ["returning_newcomer_rate", "retention_rate"],
    },
    {
        "date": date(2025, 9, 20),
        "title": "Too few survey answers in summer",
        "text": "Only a handful of people answered the Q3 survey, so the score is not published. Next time we send "
        "the survey before the holidays and keep it to three questions.",
        "tags": ["survey", "method"],
        "kpis": ["nps"],
    },
    {
        "date": date(2025, 11, 5),
        "title": "Closing the loop matters more than acting fast",
        "text": "Feedback items we acted on but never reported back on were raised again by others. Replying on the "
        "original thread when something ships cut repeat requests.",
        "tags": ["feedback"],
        "kpis": ["closed_loop_rate"],
    },
    {
        "date": date(2026, 2, 11),
        "title": "A few regulars carry the help category",
        "text": "Most answers come from a small group. We started a helpers programme to spread the load before "
        "anyone burns out.",
        "tags": ["support", "sustainability"],
        "kpis": ["contributor_absence_factor", "top_decile_share"],
    },
    {
        "date": date(2026, 5, 28),
        "title": "Meetups bring new members, talks less so",
        "text": "Months with a local meetup show more first posts in the following weeks than months with a "
        "conference talk. We will co-organise two more meetups this year.",
        "tags": ["events", "growth"],
        "kpis": ["new_members"],
    },
    {
        "date": date(2026, 8, 19),
        "title": "Release notes threads are where lurkers speak up",
        "text": "Announcement threads get replies from people who rarely post elsewhere. We now ask an open "
        "question at the end of every release note.",
        "tags": ["engagement"],
        "kpis": ["active_members", "reactivated_members"],
    },
    {
        "date": date(2026, 10, 9),
        "title": "Unanswered questions cluster on weekends",
        "text": "Questions opened on Saturdays wait longest for a first response. A weekend triage slot is being "
        "tried out.",
        "tags": ["support"],
        "kpis": ["response_rate_48h", "median_hours_to_first_response"],
    },
    {
        "date": date(2025, 12, 3),
        "title": "Year-end slowdown is not churn",
        "text": "December activity dropped, but most regulars were back by mid-January. We compare December "
        "with the previous December before reading anything into it.",
        "tags": ["method"],
        "kpis": ["retention_rate", "active_members"],
    },
    {
        "date": date(2026, 4, 16),
        "title": "Good-first-issue labels need an owner",
        "text": "Newcomers picked labelled issues that nobody was watching and waited days for a review. Each "
        "label now has a named reviewer for the week.",
        "tags": ["onboarding", "contribution"],
        "kpis": ["returning_newcomer_rate", "median_hours_to_first_response"],
    },
    {
        "date": date(2026, 7, 7),
        "title": "Summer cohorts stay longer than spring ones",
        "text": "People who joined in June and July were still active three months later more often. Students "
        "with free time are a good audience for mentoring.",
        "tags": ["growth", "mentoring"],
        "kpis": ["retention_rate"],
    },
    {
        "date": date(2026, 9, 3),
        "title": "Quarterly feedback summaries get read",
        "text": "A short post each quarter listing what we changed because of feedback got more replies than "
        "individual updates. We keep individual replies too, but the summary is what people share.",
        "tags": ["feedback"],
        "kpis": ["closed_loop_rate"],
    },
    {
        "date": date(2026, 9, 24),
        "title": "Release candidates draw testers when asked directly",
        "text": "Posting a concrete test checklist with the release candidate doubled the number of reports "
        "compared with the previous release.",
        "tags": ["engagement", "release"],
        "kpis": ["active_members", "contributions"],
    },
    {
        "date": date(2026, 10, 22),
        "title": "Office hours help more than a longer FAQ",
        "text": "Newcomers who came to the fortnightly office hours posted again within a month more often than "
        "those pointed to the FAQ. We will keep the office hours and trim the FAQ.",
        "tags": ["onboarding", "support"],
        "kpis": ["returning_newcomer_rate"],
    },
]
ACTIVITY = (
    ("event", "Community call"),
    ("event", "Local meetup"),
    ("talk", "Conference talk on the project roadmap"),
    ("talk", "Lightning talk at a user group"),
    ("post", "Blog post: release highlights"),
    ("post", "Blog post: how we run support"),
    ("trip", "Visit to a partner university"),
    ("workshop", "Hands-on workshop for new contributors"),
    ("other", "Documentation sprint"),
)


def _at(d: date, rng: random.Random) -> str:
    dt = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=rng.randint(8, 19), minutes=rng.randrange(60))
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_survey(path: Path, rng: random.Random) -> int:
    rows = []
    for i, (quarter, n) in enumerate(SURVEY_QUARTERS.items()):
        promoter, detractor = 0.3 + 0.04 * i, max(0.1, 0.32 - 0.03 * i)  # the score improves over time
        for _ in range(n):
            r = rng.random()
            score = (
                rng.choice((9, 10))
                if r < promoter
                else rng.randint(0, 6)
                if r < promoter + detractor
                else rng.choice((7, 8))
            )
            day = quarter + timedelta(days=rng.randrange(28 if quarter.month == 10 and quarter.year == 2026 else 85))
            rows.append((day, score))
    rows.sort()
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["response_id", "answered_at", "score"])
        for i, (day, score) in enumerate(rows, start=1):
            w.writerow([f"R{i:04d}", _at(day, rng), score])
    return len(rows)


def write_feedback(path: Path, rng: random.Random) -> int:
    rows = []
    day = date(2025, 1, 6)
    i = 0
    while day < date(2026, 10, 25):
        i += 1
        received = _at(day, rng)
        status = rng.choices(("open", "acted", "closed", "declined"), weights=(0.25, 0.2, 0.45, 0.1))[0]
        acted = responded = ""
        if status in ("acted", "closed"):
            acted_day = day + timedelta(days=rng.randint(2, 45))
            acted = _at(acted_day, rng) if acted_day < date(2026, 11, 1) else ""
            status = status if acted else "open"
            if status == "closed":
                responded = _at(min(acted_day + timedelta(days=rng.randint(0, 10)), date(2026, 10, 31)), rng)
                responded = max(responded, acted)
        elif status == "declined":
            responded = _at(day + timedelta(days=rng.randint(1, 14)), rng)
        rows.append([f"FB-{i:04d}", received, rng.choice(CHANNELS), status, acted, responded, rng.choice(FEEDBACK)])
        day += timedelta(days=rng.randint(1, 8))  # ~6 items a month: some months below k_min
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["feedback_id", "received_at", "channel", "status", "acted_at", "responded_at", "summary"])
        w.writerows(rows)
    return len(rows)


def write_learnings(path: Path) -> int:
    path.write_text(yaml.safe_dump(LEARNINGS, sort_keys=False, allow_unicode=True, width=100))
    return len(LEARNINGS)


def write_team_activity(path: Path, rng: random.Random) -> int:
    rows = []
    day = date(2025, 1, 9)
    while day < date(2026, 10, 31):
        kind, title = rng.choice(ACTIVITY)
        rows.append([day.isoformat(), kind, title])
        day += timedelta(days=rng.randint(1, 5))  # two to three activities a week
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "kind", "title"])
        w.writerows(rows)
    return len(rows)


def write_inputs(directory: Path, seed: int = 42) -> dict[str, Path]:
    """Write the four team files into `directory`; returns name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = {
        "survey": directory / "survey.csv",
        "feedback": directory / "feedback.csv",
        "learnings": directory / "learnings.yml",
        "team": directory / "team_activity.csv",
    }
    write_survey(paths["survey"], rng)
    write_feedback(paths["feedback"], rng)
    write_learnings(paths["learnings"])
    write_team_activity(paths["team"], rng)
    return paths
