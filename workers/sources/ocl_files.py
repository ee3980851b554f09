"""Reading the federal Registry of Lobbyists' exports (registries.md §1.3–§1.8), row by row.

`OclArchive` opens either bulk ZIP (recognised by the files inside, not by its name) and yields `Event`s:
communication reports (`ocl:comm:<COMLOG_ID>`) or registrations (`ocl:reg:<REG_NUM_ENR without -N>`).

How the files are read: members at the ZIP root matched by exact basename, case-insensitively; each file
decoded on its own (a leading BOM stripped, strict UTF-8, else cp1252); header names cleaned (BOM remnants,
spaces); the literal `null` is empty; dates are `YYYY-MM-DD`. A row with the wrong column count or a bad date is
skipped and counted in `skipped`; an unknown subject code drops that code and is counted. A file that is not
a ZIP, an HTML page saved as `.zip`, or a truncated archive raises `SourceError`.

Joins are kept small: satellite rows (officials, institutions, subjects) are loaded into dicts of interned
strings keyed by id, and only for the ids the primary file needs, so a real-scale export stays well under
300 MB.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from workers.errors import BlockedSourceError, TransientSourceError
from workers.events import Event, Official

COMM_PRIMARY = "communication_primaryexport.csv"
COMM_DPOH = "communication_dpohexport.csv"
COMM_SUBJECTS = "communication_subjectmattersexport.csv"
COMM_SUBJECT_DETAILS = "communication_subjectmatterdetailsexport.csv"
CODES = "codes_subjectmattertypesexport.csv"
REG_PRIMARY = "registration_primaryexport.csv"
REG_INSTITUTIONS = "registration_governmentinstexport.csv"
REG_SUBJECTS = "registration_subjectmattersexport.csv"
REG_SUBJECT_DETAILS = "registration_subjectmatterdetailsexport.csv"

PUBLIC_BASE = "https://lobbycanada.gc.ca/app/secure/ocl/lrs/do"
REG_TYPES = {"1": "consultant", "2": "in-house (corporation)", "3": "in-house (organization)"}
_BOM = codecs.BOM_UTF8
_intern = sys.intern


def parse_date(value: str) -> datetime | None:
    """`YYYY-MM-DD` → UTC midnight; '' → None; anything else raises ValueError."""
    if not value:
        return None
    day = value[:10]
    if len(day) != 10 or day[4] != "-" or day[7] != "-":
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return _midnight(day)


@lru_cache(maxsize=8192)  # a few thousand distinct days cover a whole export; strptime was a tenth of the ingest
def _midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def detect_encoding(chunks: Iterable[bytes]) -> str:
    """'utf-8' when every byte decodes strictly (after a BOM), else 'cp1252' (registries.md §1.4)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    first = True
    try:
        for chunk in chunks:
            if first:
                chunk = chunk.removeprefix(_BOM)
                first = False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def clean_header(name: str) -> str:
    # A BOM read as cp1252 ("ï»¿") sits before the opening quote, so csv keeps the quotes of that first name.
    return name.replace("\ufeff", "").replace("ï»¿", "").strip().strip('"').strip().upper()


class CsvReader:
    """Rows of one CSV as dicts with cleaned header names, `null` → '', counting what it skips."""

    def __init__(self, skipped: Counter[str]) -> None:
        self.skipped = skipped

    def rows(self, lines: Iterable[str], *, label: str) -> Iterator[dict[str, str]]:
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            return
        names = [clean_header(name) for name in header]
        width = len(names)
        for row in reader:
            if len(row) != width:
                if row:  # a blank line is not a malformed row
                    self.skipped[f"{label}: wrong column count"] += 1
                continue
            yield {name: ("" if value == "null" else value.strip()) for name, value in zip(names, row, strict=True)}


class OclArchive:
    """One OCL bulk ZIP, communications or registrations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped: Counter[str] = Counter()
        self._csv = CsvReader(self.skipped)
        with path.open("rb") as handle:
            head = handle.read(512)
        if head.lstrip()[:1] == b"<":
            raise BlockedSourceError(
                "the download is an HTML page (a bot challenge), not the registry's ZIP",
                action="Download the ZIP in a browser, then `lobbybot import ocl FILE.zip` or drop it into "
                       "LOBBYBOT_OCL_DROP_DIR.")
        try:
            self._zip = zipfile.ZipFile(path)
            self._members = {name.lower(): name for name in self._zip.namelist() if "/" not in name}
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise TransientSourceError(f"the ZIP is unreadable or truncated ({exc})",
                                       action="Download it again; lobbybot retries at the next poll.") from None
        if COMM_PRIMARY in self._members:
            self.kind = "communications"
        elif REG_PRIMARY in self._members:
            self.kind = "registrations"
        else:
            raise TransientSourceError(
                f"the ZIP holds neither {COMM_PRIMARY} nor {REG_PRIMARY}",
                action="Check that the file is the registry's communications or registrations export.")

    def close(self) -> None:
        self._zip.close()

    def has(self, basename: str) -> bool:
        return basename in self._members

    def rows(self, basename: str) -> Iterator[dict[str, str]]:
        """Stream the rows of one member; nothing when the member is absent."""
        if basename not in self._members:
            return
        name = self._members[basename]
        try:
            with self._zip.open(name) as raw:
                encoding = detect_encoding(iter(lambda: raw.read(1 << 20), b""))
            with self._zip.open(name) as raw:
                if encoding == "utf-8":
                    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                else:
                    text = io.TextIOWrapper(raw, encoding="cp1252", errors="replace", newline="")
                yield from self._csv.rows(text, label=basename)
        except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile, csv.Error) as exc:
            raise TransientSourceError(f"{name} in the ZIP is truncated or corrupt ({exc})",
                                       action="Download the ZIP again.") from None

    def events(self) -> Iterator[Event]:
        try:
            if self.kind == "communications":
                yield from communications(self)
            else:
                yield from registrations(self)
        finally:
            self.close()


def subject_labels(archive: OclArchive) -> dict[str, tuple[str, str]]:
    """Subject code → (English, French) label."""
    return {row["SUBJECT_CODE_OBJET"]: (_intern(row.get("SMT_EN_DESC", "")), _intern(row.get("SMT_FR_DESC", "")))
            for row in archive.rows(CODES) if row.get("SUBJECT_CODE_OBJET")}


def _codes(value: str) -> list[str]:
    return [code.strip() for code in value.split(",") if code.strip()]


def _subjects_by_id(archive: OclArchive, key: str, files: list[tuple[str, str]],
                    labels: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """Id → English subject labels from both eras of subject files, (id, code) pairs deduplicated."""
    found: dict[str, list[str]] = defaultdict(list)
    for basename, code_column in files:
        for row in archive.rows(basename):
            record_id = _intern(row.get(key, ""))  # the same id keys the officials too: one string for both
            codes = _codes(row.get(code_column, ""))
            if not codes and row.get("SUBJ_MATTER_OBJET"):  # the 2022 schema held English labels
                found[record_id].append(_intern(row["SUBJ_MATTER_OBJET"]))
            for code in codes:
                label = labels.get(code, ("", ""))[0] or (code if not labels else "")
                if not label:
                    archive.skipped["unknown subject code"] += 1
                    continue
                if label not in found[record_id]:
                    found[record_id].append(_intern(label))
    return found


def _person(first: str, last: str) -> str:
    return " ".join(part for part in (first.strip().title(), last.strip().title()) if part)


def communications(archive: OclArchive) -> Iterator[Event]:
    labels = subject_labels(archive)
    # (name, title, institution) tuples, not models: 600,000 of them must stay small.
    officials: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for row in archive.rows(COMM_DPOH):
        institution = row.get("INSTITUTION") or row.get("OTHER_INSTITUTION_AUTRE", "")
        officials[_intern(row["COMLOG_ID"])].append((
            _intern(_person(row.get("DPOH_FIRST_NM_PRENOM_TCPD", ""), row.get("DPOH_LAST_NM_TCPD", ""))),
            _intern(row.get("DPOH_TITLE_TITRE_TCPD", "")), _intern(institution)))
    subjects = _subjects_by_id(archive, "COMLOG_ID", [(COMM_SUBJECTS, "SUBJECT_CODE_OBJET"),
                                                      (COMM_SUBJECT_DETAILS, "SUBJECT_CODE_OBJET")], labels)
    for row in archive.rows(COMM_PRIMARY):
        comlog = row.get("COMLOG_ID", "")
        try:
            met_on = parse_date(row.get("COMM_DATE", ""))
            posted = parse_date(row.get("POSTED_DATE_PUBLICATION", ""))
        except ValueError:
            archive.skipped["bad date"] += 1
            continue
        if not comlog.isdigit():
            archive.skipped["bad COMLOG_ID"] += 1
            continue
        yield communication_event(
            comlog=comlog, organization=row.get("EN_CLIENT_ORG_CORP_NM_AN", ""),
            organization_fr=row.get("FR_CLIENT_ORG_CORP_NM", ""),
            registrant=_person(row.get("RGSTRNT_1ST_NM_PRENOM_DCLRNT", ""), row.get("RGSTRNT_LAST_NM_DCLRNT", "")),
            met_on=met_on, posted=posted, officials=officials.pop(comlog, []),
            subjects=subjects.pop(comlog, []), previous=row.get("PREV_COMLOG_ID_PRECEDNT", ""))


def communication_event(*, comlog: str, organization: str, organization_fr: str, registrant: str,
                        met_on: datetime | None, posted: datetime | None,
                        officials: list[tuple[str, str, str]], subjects: list[str], previous: str = "") -> Event:
    """A monthly communication report; an amendment names the report it replaces in `supersedes`.
    `officials` are (name, title, institution) of the designated public office holders met."""
    met_officials = tuple(Official(name=name, title=title, institution=institution)
                          for name, title, institution in officials)
    institutions = tuple(dict.fromkeys(o.institution for o in met_officials if o.institution))
    who = organization or organization_fr
    where = institutions[0] if len(institutions) == 1 else f"{len(institutions)} institutions"
    title = f"{who} communicated with {where}" if institutions else f"{who} filed a communication report"
    met = ", ".join(f"{o.name} ({o.title})" if o.title else o.name for o in met_officials[:5] if o.name)
    parts = [f"Registrant: {registrant}." if registrant else "", f"Met: {met}." if met else "",
             f"Subjects: {', '.join(subjects)}." if subjects else ""]
    return Event(
        id=f"ocl:comm:{comlog}", version=comlog, source="ocl", kind="communication", title=title,
        summary=" ".join(part for part in parts if part),
        url=f"{PUBLIC_BASE}/cmmLgPblcVw?comlogId={comlog}", language="en",
        occurred_at=met_on, published_at=posted or met_on, organization=organization,
        organization_fr=organization_fr, registrant=registrant, lobbyists=(registrant,) if registrant else (),
        institutions=institutions, officials=met_officials, subjects=tuple(subjects),
        supersedes=f"ocl:comm:{previous}" if previous.isdigit() else None,
    )


def _version_key(version: dict[str, str]) -> tuple[str, int]:
    """Order of versions: effective date first (the registry's suffix disagrees with it in ~3% of chains)."""
    suffix = version["REG_NUM_ENR"].rsplit("-", 1)[-1]
    return version.get("EFFECTIVE_DATE_VIGUEUR", ""), int(suffix) if suffix.isdigit() else 0


_REG_FIELDS = ("REG_ID_ENR", "REG_TYPE_ENR", "REG_NUM_ENR", "EN_FIRM_NM_FIRME_AN", "EN_CLIENT_ORG_CORP_NM_AN",
               "FR_CLIENT_ORG_CORP_NM", "RGSTRNT_1ST_NM_PRENOM_DCLRNT", "RGSTRNT_LAST_NM_DCLRNT",
               "EFFECTIVE_DATE_VIGUEUR", "END_DATE_FIN", "POSTED_DATE_PUBLICATION")


def registrations(archive: OclArchive) -> Iterator[Event]:
    """One event per registration: its latest version, with what changed since the version before it."""
    chains: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in archive.rows(REG_PRIMARY):
        number = row.get("REG_NUM_ENR", "")
        try:
            for column in ("EFFECTIVE_DATE_VIGUEUR", "END_DATE_FIN", "POSTED_DATE_PUBLICATION"):
                parse_date(row.get(column, ""))
        except ValueError:
            archive.skipped["bad date"] += 1
            continue
        if "-" not in number or not row.get("REG_ID_ENR"):
            archive.skipped["bad REG_NUM_ENR"] += 1
            continue
        chains[number.rsplit("-", 1)[0]].append({k: _intern(row.get(k, "")) for k in _REG_FIELDS})
    latest_two = {base: sorted(versions, key=_version_key)[-2:] for base, versions in chains.items()}
    wanted = {v["REG_ID_ENR"] for pair in latest_two.values() for v in pair}
    institutions: dict[str, list[str]] = defaultdict(list)
    for row in archive.rows(REG_INSTITUTIONS):
        if row.get("REG_ID_ENR") in wanted:
            name = row.get("INSTITUTION") or row.get("EN_INST_NM_AN", "")
            if name:
                institutions[row["REG_ID_ENR"]].append(_intern(name))
    labels = subject_labels(archive)
    subjects = _subjects_by_id(archive, "REG_ID_ENR", [(REG_SUBJECTS, "SUBJECT_CODE_OBJET"),
                                                       (REG_SUBJECT_DETAILS, "ASSOC_SUBJECT_CODES_OBJET")], labels)
    for base, pair in latest_two.items():
        latest, previous = pair[-1], (pair[0] if len(pair) == 2 else None)
        yield registration_event(base, latest, previous, institutions, subjects)


def registration_event(base: str, latest: dict[str, str], previous: dict[str, str] | None,
                       institutions: dict[str, list[str]], subjects: dict[str, list[str]]) -> Event:
    reg_id = latest["REG_ID_ENR"]
    registrant = _person(latest["RGSTRNT_1ST_NM_PRENOM_DCLRNT"], latest["RGSTRNT_LAST_NM_DCLRNT"])
    organization = latest["EN_CLIENT_ORG_CORP_NM_AN"] or latest["EN_FIRM_NM_FIRME_AN"]
    ended = parse_date(latest["END_DATE_FIN"])
    kind = REG_TYPES.get(latest["REG_TYPE_ENR"], "registration")
    firm = latest["EN_FIRM_NM_FIRME_AN"]
    now_inst = institutions.get(reg_id, [])
    now_subj = subjects.get(reg_id, [])
    changes: list[str] = []
    if previous is not None:
        before_inst = institutions.get(previous["REG_ID_ENR"], [])
        before_subj = subjects.get(previous["REG_ID_ENR"], [])
        changes += _diff("institutions", before_inst, now_inst) + _diff("subjects", before_subj, now_subj)
        if ended and not previous["END_DATE_FIN"]:
            changes.append(f"terminated on {latest['END_DATE_FIN']}")
    state = "terminated" if ended else "active"
    verb = "terminated" if ended else ("amended" if previous else "registered")
    title = f"{organization}: {kind} registration {verb}" + (f" ({firm})" if kind == "consultant" and firm else "")
    summary_parts = [f"Changes: {'; '.join(changes)}." if changes else "",
                     f"Registrant: {registrant}." if registrant else "",
                     f"Institutions: {', '.join(now_inst[:8])}." if now_inst else "",
                     f"Subjects: {', '.join(now_subj[:8])}." if now_subj else ""]
    effective = parse_date(latest["EFFECTIVE_DATE_VIGUEUR"])
    client_num = base.rsplit("-", 1)[-1]
    return Event(
        id=f"ocl:reg:{base}", version=reg_id, source="ocl", kind="registration", title=title,
        summary=" ".join(part for part in summary_parts if part),
        url=f"{PUBLIC_BASE}/vwRg?cno={client_num}&regId={reg_id}", language="en",
        occurred_at=effective, published_at=parse_date(latest["POSTED_DATE_PUBLICATION"]) or effective,
        organization=organization, organization_fr=latest["FR_CLIENT_ORG_CORP_NM"], registrant=registrant,
        lobbyists=(registrant,) if registrant else (), institutions=tuple(now_inst), subjects=tuple(now_subj),
        status=state, end_date=ended,
    )


def _diff(what: str, before: list[str], after: list[str]) -> list[str]:
    added = [item for item in after if item not in before]
    removed = [item for item in before if item not in after]
    out = []
    if added:
        out.append(f"{what} added: {', '.join(added)}")
    if removed:
        out.append(f"{what} removed: {', '.join(removed)}")
    return out
