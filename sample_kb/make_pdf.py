"""Generate sample_kb/security/security-whitepaper.pdf (the sample knowledge base's only PDF).

Run from anywhere:  python sample_kb/make_pdf.py
Uses fpdf2 with the core Helvetica font, so the text must stay within Latin-1.
"""

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

OUTPUT = Path(__file__).resolve().parent / "security" / "security-whitepaper.pdf"

TITLE = "Nimbus Desk Security Whitepaper"
SUBTITLE = "Version 3.2 - November 2026 - Nimbus Labs, Inc."

# (heading, [paragraphs]); a paragraph starting with "- " is rendered as a bullet.
SECTIONS = [
    (
        "1. Introduction",
        [
            "Nimbus Desk is a customer support platform used by thousands of companies to handle email, chat "
            "and voice conversations with their customers. This whitepaper describes the technical and "
            "organisational measures Nimbus Labs uses to protect customer data in the US and EU regions. "
            "The China region is operated by our partner Shanghai Yunqiao Information Technology Co., Ltd. "
            "and is described in separate documentation.",
        ],
    ),
    (
        "2. Infrastructure and tenant isolation",
        [
            "Nimbus Desk runs on Amazon Web Services. Each region is deployed across three availability "
            "zones: US in us-east-1 (N. Virginia) with backups in us-west-2 (Oregon), and EU in "
            "eu-central-1 (Frankfurt) with backups in eu-west-1 (Dublin). Customer data never leaves its "
            "region, except for the billing and support-access cases listed in the Data residency article.",
            "Nimbus Desk is multi-tenant. Every record carries an account ID, and every database query is "
            "scoped to the account of the authenticated user by a shared data-access layer; cross-account "
            "access is tested automatically on every release. Attachments are stored under per-account "
            "prefixes and served only through short-lived signed URLs.",
        ],
    ),
    (
        "3. Encryption",
        [
            "- At rest: AES-256 for databases, search indexes, attachments and backups, with per-account "
            "data keys wrapped by AWS KMS keys that are rotated every 12 months.",
            "- In transit: TLS 1.2 or 1.3 for all external connections, HSTS with a one-year max-age, and "
            "mutual TLS between internal services.",
            "- Customer-managed keys (BYOK) are available to Enterprise customers as an add-on.",
        ],
    ),
    (
        "4. Employee access",
        [
            "Nimbus Labs employees have no standing access to production data. Engineers request "
            "just-in-time access, which must be approved by a second engineer and expires after at most "
            "4 hours. All production sessions are recorded. Employees sign in with SSO and a hardware "
            "security key (FIDO2). Access rights are reviewed every quarter, and access is removed within "
            "24 hours when an employee leaves.",
            "Support engineers can open a customer account only when an Admin of that account grants "
            "support access, for at most 7 days. All employees pass a background check before hiring, where "
            "local law allows, and complete security and privacy training every year.",
        ],
    ),
    (
        "5. Application security",
        [
            "Every code change is peer reviewed and passes static analysis (SAST), dependency scanning and "
            "automated tests before it is deployed. Dynamic scanning (DAST) runs weekly against staging. "
            "An independent firm performs a full penetration test every year, and we run a public bug "
            "bounty program. Vulnerabilities are fixed within these targets after confirmation:",
            "- Critical: 7 days",
            "- High: 30 days",
            "- Medium: 90 days",
        ],
    ),
    (
        "6. Availability, backup and disaster recovery",
        [
            "Databases replicate synchronously across availability zones, so the loss of one zone does not "
            "lose data. Encrypted backups are taken daily, copied to the backup region, and kept for 35 "
            "days; databases also support point-in-time recovery for the last 7 days.",
            "If a whole region becomes unavailable, we restore service in the backup region with a "
            "Recovery Point Objective (RPO) of 1 hour and a Recovery Time Objective (RTO) of 4 hours. "
            "Disaster recovery is tested twice a year, and the results are reviewed in the SOC 2 audit. "
            "The uptime SLA is 99.9% on Business and 99.95% on Enterprise; current status is published at "
            "status.nimbusdesk.example.",
        ],
    ),
    (
        "7. Incident response",
        [
            "A security on-call team is available 24 hours a day, 7 days a week. Incidents are classified "
            "into four severity levels (SEV-1 to SEV-4) and handled according to a documented plan that is "
            "exercised twice a year. If we confirm a security incident that affects a customer's personal "
            "data, we notify the account Owner without undue delay and no later than 72 hours after "
            "confirmation, with the information the customer needs for its own regulatory notifications.",
        ],
    ),
    (
        "8. Compliance",
        [
            "Nimbus Desk is audited every year against SOC 2 Type II (Security, Availability and "
            "Confidentiality) and is certified to ISO/IEC 27001:2022. Reports and certificates are available "
            "in the Trust Center at trust.nimbusdesk.example. Nimbus Labs signs a Data Processing Agreement "
            "with every customer and includes the EU Standard Contractual Clauses. Nimbus Desk is not HIPAA "
            "compliant.",
        ],
    ),
    (
        "9. Contact",
        [
            "Security questions: security@nimbusdesk.example. Questionnaires and audit reports: ask your "
            "account manager or visit the Trust Center.",
        ],
    ),
]


class WhitepaperPDF(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 5, f"{TITLE} - Public - Page {self.page_no()}", align="C")
        self.set_text_color(0, 0, 0)


def build(path: Path = OUTPUT) -> Path:
    pdf = WhitepaperPDF(format="A4")
    pdf.set_title(TITLE)
    pdf.set_author("Nimbus Labs, Inc.")
    pdf.set_subject("Security and compliance overview of Nimbus Desk")
    pdf.set_creation_date(datetime(2026, 11, 18, tzinfo=timezone.utc))  # fixed, so reruns give the same file
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 9, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 6, SUBTITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    for heading, paragraphs in SECTIONS:
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for paragraph in paragraphs:
            if paragraph.startswith("- "):
                pdf.set_x(pdf.l_margin + 4)
                pdf.multi_cell(0, 5, "- " + paragraph[2:], new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.multi_cell(0, 5, paragraph, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1.5)
        pdf.ln(2)

    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


if __name__ == "__main__":
    out = build()
    print(f"wrote {out}")
