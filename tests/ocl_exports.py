"""Builders of real-format exports of the federal Registry of Lobbyists (registries.md §1.3–§1.7), in bytes.

The ZIPs hold their CSV files at the root under the real names, with the real columns in the real order; every
field is double-quoted, an empty cell is the literal `null`, dates are `YYYY-MM-DD`. Rows are dicts keyed by the
real column names (a missing column is `null`); `report()`, `official()` and `registration()` fill in plausible
values. A file can be written as cp1252 and/or with a UTF-8 BOM, and malformed rows can be appended verbatim,
as the real exports sometimes have them.

    communications_zip(reports=[report("698001")], officials=[official("698001")], codes=CODES,
                       encoding={REG_PRIMARY: "cp1252"}, bom=True, extra_rows={COMM_PRIMARY: ['"1","2"']})
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

COMM_PRIMARY = "Communication_PrimaryExport.csv"
COMM_DPOH = "Communication_DpohExport.csv"
COMM_SUBJECTS = "Communication_SubjectMattersExport.csv"
COMM_SUBJECT_DETAILS = "Communication_SubjectMatterDetailsExport.csv"
CODES_FILE = "Codes_SubjectMatterTypesExport.csv"
REG_PRIMARY = "Registration_PrimaryExport.csv"
REG_INSTITUTIONS = "Registration_GovernmentInstExport.csv"
REG_SUBJECTS = "Registration_SubjectMattersExport.csv"

COMM_PRIMARY_COLUMNS = (
    "COMLOG_ID", "CLIENT_ORG_CORP_NUM", "EN_CLIENT_ORG_CORP_NM_AN", "FR_CLIENT_ORG_CORP_NM",
    "REGISTRANT_NUM_DECLARANT", "RGSTRNT_LAST_NM_DCLRNT", "RGSTRNT_1ST_NM_PRENOM_DCLRNT",
    "COMM_DATE", "REG_TYPE_ENR", "SUBMISSION_DATE_SOUMISSION", "POSTED_DATE_PUBLICATION",
    "PREV_COMLOG_ID_PRECEDNT",
)
COMM_DPOH_COLUMNS = (
    "COMLOG_ID", "DPOH_LAST_NM_TCPD", "DPOH_FIRST_NM_PRENOM_TCPD", "DPOH_TITLE_TITRE_TCPD",
    "BRANCH_UNIT_DIRECTION_SERVICE", "OTHER_INSTITUTION_AUTRE", "INSTITUTION",
)
COMM_SUBJECTS_COLUMNS = ("COMLOG_ID", "SUBJECT_CODE_OBJET", "CUSTOM_SUBJ_OBJET_PERSO")
COMM_SUBJECT_DETAILS_COLUMNS = ("COMLOG_ID", "SUBJECT_CODE_OBJET", "DESCRIPTION")
CODES_COLUMNS = ("SUBJECT_CODE_OBJET", "SMT_EN_DESC", "SMT_FR_DESC")
REG_PRIMARY_COLUMNS = (
    "REG_ID_ENR", "REG_TYPE_ENR", "REG_NUM_ENR", "VERSION_CODE", "EN_FIRM_NM_FIRME_AN", "FR_FIRM_NM_FIRME",
    "RGSTRNT_POS_POSTE_DCLRNT", "FIRM_ADDRESS_ADRESSE_FIRME", "FIRM_TEL_FIRME", "FIRM_FAX_FIRME",
    "RGSTRNT_NUM_DECLARANT", "RGSTRNT_LAST_NM_DCLRNT", "RGSTRNT_1ST_NM_PRENOM_DCLRNT", "RO_POS_POSTE_AR",
    "RGSTRNT_ADDRESS_ADRESSE_DCLRNT", "RGSTRNT_TEL_DCLRNT", "RGSTRNT_FAX_DCLRNT",
    "CLIENT_ORG_CORP_PROFIL_ID_PROFIL_CLIENT_ORG_CORP", "CLIENT_ORG_CORP_NUM", "EN_CLIENT_ORG_CORP_NM_AN",
    "FR_CLIENT_ORG_CORP_NM", "CLIENT_ORG_CORP_ADDRESS_ADRESSE_CLIENT_ORG_CORP", "CLIENT_ORG_CORP_TEL",
    "CLIENT_ORG_CORP_FAX", "REP_LAST_NM_REP", "REP_1ST_NM_PRENOM_REP", "REP_POSITION_POSTE_REP",
    "EFFECTIVE_DATE_VIGUEUR", "END_DATE_FIN", "PARENT_IND_SOC_MERE", "COALITION_IND", "SUBSIDIARY_IND_FILIALE",
    "DIRECT_INT_IND_INT_DIRECT", "GOVT_FUND_IND_FIN_GOUV", "FY_END_DATE_FIN_EXERCICE", "CONTG_FEE_IND_HON_COND",
    "PREV_REG_ID_ENR_PRECEDNT", "POSTED_DATE_PUBLICATION",
)
REG_INSTITUTIONS_COLUMNS = ("REG_ID_ENR", "INSTITUTION")
REG_SUBJECTS_COLUMNS = ("REG_ID_ENR", "SUBJECT_CODE_OBJET", "CUSTOM_SUBJ_OBJET_PERSO")

RECENT_TITLE = "Posted in the Last 14 Days"
RECENT_COLUMNS = (
    "Communication Number", "Communication Date", "Organization, Corporation or Client Name", "Registrant Name",
    "DPOH Name", "DPOH Position Title", "DPOH Government Institution", "Subject Matters",
)

# A few entries of the real subject-code vocabulary (about 54 codes).
CODES: list[dict[str, str]] = [
    {"SUBJECT_CODE_OBJET": "SMT-8", "SMT_EN_DESC": "Energy", "SMT_FR_DESC": "Énergie"},
    {"SUBJECT_CODE_OBJET": "SMT-17", "SMT_EN_DESC": "Government Procurement",
     "SMT_FR_DESC": "Marchés publics"},
    {"SUBJECT_CODE_OBJET": "SMT-20", "SMT_EN_DESC": "Industry", "SMT_FR_DESC": "Industrie"},
    {"SUBJECT_CODE_OBJET": "SMT-12", "SMT_EN_DESC": "Environment", "SMT_FR_DESC": "Environnement"},
]

def days_ago(days: int) -> str:
    """A `YYYY-MM-DD` date `days` before today (UTC): fixtures stay inside the retention window as time passes."""
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


Row = Mapping[str, str | None]
Encoding = str | Mapping[str, str]
Bom = bool | Collection[str]
ExtraRows = Mapping[str, Sequence[str | Sequence[str]]]


def report(comlog: str, *, client_num: str = "354912", org_en: str = "Example Energy Inc.",
           org_fr: str | None = None, registrant_num: str = "777123", registrant_last: str = "Tremblay",
           registrant_first: str = "Julie", comm_date: str | None = None, reg_type: str = "3",
           submitted: str | None = None, posted: str | None = None,
           previous: str | None = None) -> dict[str, str | None]:
    """A row of `Communication_PrimaryExport.csv`; dates default to a meeting 40 days ago, posted 10 days ago."""
    comm_date = days_ago(40) if comm_date is None else comm_date
    submitted = days_ago(12) if submitted is None else submitted
    posted = days_ago(10) if posted is None else posted
    return {
        "COMLOG_ID": comlog, "CLIENT_ORG_CORP_NUM": client_num, "EN_CLIENT_ORG_CORP_NM_AN": org_en,
        "FR_CLIENT_ORG_CORP_NM": org_fr, "REGISTRANT_NUM_DECLARANT": registrant_num,
        "RGSTRNT_LAST_NM_DCLRNT": registrant_last, "RGSTRNT_1ST_NM_PRENOM_DCLRNT": registrant_first,
        "COMM_DATE": comm_date, "REG_TYPE_ENR": reg_type, "SUBMISSION_DATE_SOUMISSION": submitted,
        "POSTED_DATE_PUBLICATION": posted, "PREV_COMLOG_ID_PRECEDNT": previous,
    }


def official(comlog: str, *, last: str = "Doe", first: str = "Pat", title: str | None = "Member of Parliament",
             branch: str | None = None, other_institution: str | None = None,
             institution: str | None = "House of Commons") -> dict[str, str | None]:
    """A row of `Communication_DpohExport.csv`: one designated public office holder met."""
    return {
        "COMLOG_ID": comlog, "DPOH_LAST_NM_TCPD": last, "DPOH_FIRST_NM_PRENOM_TCPD": first,
        "DPOH_TITLE_TITRE_TCPD": title, "BRANCH_UNIT_DIRECTION_SERVICE": branch,
        "OTHER_INSTITUTION_AUTRE": other_institution, "INSTITUTION": institution,
    }


def subject_old(comlog: str, code: str, custom: str | None = None) -> dict[str, str | None]:
    """A row of the older `Communication_SubjectMattersExport.csv` (one code per row, ends 2024-09-30)."""
    return {"COMLOG_ID": comlog, "SUBJECT_CODE_OBJET": code, "CUSTOM_SUBJ_OBJET_PERSO": custom}


def subject_new(comlog: str, codes: Sequence[str], description: str = "Discussed the file.") -> dict[str, str | None]:
    """A row of the newer `Communication_SubjectMatterDetailsExport.csv` (codes joined as "SMT-8, SMT-17")."""
    return {"COMLOG_ID": comlog, "SUBJECT_CODE_OBJET": ", ".join(codes), "DESCRIPTION": description}


def registration(reg_id: str, reg_num: str, *, effective: str | None = None, end: str | None = None,
                 reg_type: str = "3", client: str = "Example Energy Inc.", client_fr: str | None = None,
                 firm: str | None = None, registrant_last: str = "Gagnon", registrant_first: str = "Marie",
                 posted: str | None = "", previous: str | None = None,
                 version_code: str = "V6") -> dict[str, str | None]:
    """A row of `Registration_PrimaryExport.csv` (one row per version; `reg_num` ends with `-N`). The effective
    date defaults to 100 days ago, the posting date to the effective date (`posted=None` writes `null`)."""
    effective = days_ago(100) if effective is None else effective
    posted = effective if posted == "" else posted
    return {
        "REG_ID_ENR": reg_id, "REG_TYPE_ENR": reg_type, "REG_NUM_ENR": reg_num, "VERSION_CODE": version_code,
        "EN_FIRM_NM_FIRME_AN": firm, "RGSTRNT_POS_POSTE_DCLRNT": "President",
        "RGSTRNT_NUM_DECLARANT": "778218", "RGSTRNT_LAST_NM_DCLRNT": registrant_last,
        "RGSTRNT_1ST_NM_PRENOM_DCLRNT": registrant_first, "CLIENT_ORG_CORP_NUM": reg_num.split("-")[1],
        "EN_CLIENT_ORG_CORP_NM_AN": client, "FR_CLIENT_ORG_CORP_NM": client_fr,
        "EFFECTIVE_DATE_VIGUEUR": effective, "END_DATE_FIN": end, "PARENT_IND_SOC_MERE": "N",
        "COALITION_IND": "N", "SUBSIDIARY_IND_FILIALE": "N", "DIRECT_INT_IND_INT_DIRECT": "N",
        "GOVT_FUND_IND_FIN_GOUV": "N", "FY_END_DATE_FIN_EXERCICE": "2025-03-31", "CONTG_FEE_IND_HON_COND": "N",
        "PREV_REG_ID_ENR_PRECEDNT": previous, "POSTED_DATE_PUBLICATION": posted,
    }


def csv_bytes(columns: Sequence[str], rows: Iterable[Row], *, encoding: str = "utf-8", bom: bool = False,
              extra_rows: Sequence[str | Sequence[str]] = ()) -> bytes:
    """One export file: header and rows all double-quoted, `null` for empty cells, then `extra_rows` (raw lines
    written verbatim, or lists of values quoted like the rest: a wrong column count, a bad date…)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        unknown = set(row) - set(columns)
        assert not unknown, f"columns {sorted(unknown)} are not in this file"
        writer.writerow([_cell(row.get(column)) for column in columns])
    for extra in extra_rows:
        if isinstance(extra, str):
            out.write(extra.rstrip("\r\n") + "\r\n")
        else:
            writer.writerow([_cell(value) for value in extra])
    data = out.getvalue().encode(encoding)
    return b"\xef\xbb\xbf" + data if bom else data


def communications_zip(*, reports: Iterable[Row] = (), officials: Iterable[Row] = (),
                       subjects_old: Iterable[Row] = (), subjects_new: Iterable[Row] = (),
                       codes: Iterable[Row] = CODES, encoding: Encoding = "utf-8", bom: Bom = False,
                       extra_rows: ExtraRows | None = None) -> bytes:
    """The weekly communications ZIP, with its five files at the root."""
    return _zip({
        COMM_PRIMARY: (COMM_PRIMARY_COLUMNS, reports),
        COMM_DPOH: (COMM_DPOH_COLUMNS, officials),
        COMM_SUBJECTS: (COMM_SUBJECTS_COLUMNS, subjects_old),
        COMM_SUBJECT_DETAILS: (COMM_SUBJECT_DETAILS_COLUMNS, subjects_new),
        CODES_FILE: (CODES_COLUMNS, codes),
    }, encoding, bom, extra_rows or {})


def registrations_zip(*, registrations: Iterable[Row] = (), institutions: Iterable[tuple[str, str]] = (),
                      subjects: Iterable[tuple[str, str]] = (), codes: Iterable[Row] = CODES,
                      encoding: Encoding = "utf-8", bom: Bom = False, extra_rows: ExtraRows | None = None) -> bytes:
    """The weekly registrations ZIP: primary file (one row per version), institutions and subject codes by
    REG_ID_ENR (`(reg_id, institution)` and `(reg_id, code)` pairs), and the subject-code vocabulary."""
    return _zip({
        REG_PRIMARY: (REG_PRIMARY_COLUMNS, registrations),
        REG_INSTITUTIONS: (REG_INSTITUTIONS_COLUMNS,
                           [{"REG_ID_ENR": reg_id, "INSTITUTION": name} for reg_id, name in institutions]),
        REG_SUBJECTS: (REG_SUBJECTS_COLUMNS,
                       [{"REG_ID_ENR": reg_id, "SUBJECT_CODE_OBJET": code} for reg_id, code in subjects]),
        CODES_FILE: (CODES_COLUMNS, codes),
    }, encoding, bom, extra_rows or {})


def recent_rows(report_row: Row, officials: Iterable[Row], subjects: Sequence[str] = ()) -> list[dict[str, str]]:
    """The recent export's rows for one report: one row per official met, the report's fields repeated."""
    number = f"{report_row['CLIENT_ORG_CORP_NUM']}-{report_row['COMLOG_ID']}"
    registrant = f"{report_row['RGSTRNT_1ST_NM_PRENOM_DCLRNT']} {report_row['RGSTRNT_LAST_NM_DCLRNT']}".upper()
    return [{
        "Communication Number": number, "Communication Date": str(report_row["COMM_DATE"]),
        "Organization, Corporation or Client Name": str(report_row["EN_CLIENT_ORG_CORP_NM_AN"]),
        "Registrant Name": registrant,
        "DPOH Name": f"{person['DPOH_FIRST_NM_PRENOM_TCPD']} {person['DPOH_LAST_NM_TCPD']}".upper(),
        "DPOH Position Title": str(person["DPOH_TITLE_TITRE_TCPD"] or ""),
        "DPOH Government Institution": str(person["INSTITUTION"] or ""),
        "Subject Matters": ", ".join(subjects),
    } for person in officials]


def recent_csv(rows: Iterable[Mapping[str, str]], *, title: str = RECENT_TITLE) -> bytes:
    """The recent-communications export: a title line, the header, one row per official (minimal quoting)."""
    out = io.StringIO(newline="")
    out.write(title + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RECENT_COLUMNS)
    for row in rows:
        writer.writerow([row.get(column, "") for column in RECENT_COLUMNS])
    return out.getvalue().encode("utf-8")


def _cell(value: str | None) -> str:
    return "null" if value is None or value == "" else str(value)


def _zip(files: Mapping[str, tuple[Sequence[str], Iterable[Row]]], encoding: Encoding, bom: Bom,
         extra_rows: ExtraRows) -> bytes:
    unknown = (set(extra_rows) | (set(encoding) if isinstance(encoding, Mapping) else set())
               | (set(bom) if not isinstance(bom, bool) else set())) - set(files)
    assert not unknown, f"no file named {sorted(unknown)} in this ZIP"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, (columns, rows) in files.items():
            file_encoding = encoding if isinstance(encoding, str) else encoding.get(name, "utf-8")
            file_bom = bom if isinstance(bom, bool) else name in bom
            archive.writestr(name, csv_bytes(columns, rows, encoding=file_encoding, bom=file_bom,
                                             extra_rows=extra_rows.get(name, ())))
    return buffer.getvalue()
