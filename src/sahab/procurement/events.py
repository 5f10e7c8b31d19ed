"""Procurement's entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent
from sahab.ledger.vocabulary import translatable as _


class ProcurementEvent(LedgerEvent):
    """Procurement's entries: plans, tenders, documents, enquiries, bids, evaluation, awards,
    complaints, contracts."""

    BID_SUBMITTED = (
        "procurement.bid.submitted",
        "A sealed, signed bid was received (under the tender's secret tag until the opening).",
        ("commitment", "replaces"),
        _("Bid submitted"),
    )
    BID_CONFIRMED = (
        "procurement.bid.confirmed",
        "A bidder confirmed its sealed bid after an amendment changed the tender's conditions, "
        "accepting the amendment it names (under the tender's secret tag).",
        ("amendment", "commitment"),
        _("Bid confirmed"),
    )
    BID_WITHDRAWN = (
        "procurement.bid.withdrawn",
        "A bidder withdrew a sealed bid before the deadline (under the tender's secret tag).",
        ("commitment",),
        _("Bid withdrawn"),
    )
    CALL_OFF_ORDERED = (
        "procurement.call_off.ordered",
        "A buyer ordered under a framework agreement's contract.",
        ("buyer", "contract", "lot", "quantity", "supplier", "unit_price", "value"),
        _("Call-off ordered"),
    )
    CANDIDATE_APPLIED = (
        "procurement.candidate.applied",
        "A company applied to a restricted procedure.",
        ("company",),
        _("Candidate applied"),
    )
    CANDIDATE_NOT_QUALIFIED = (
        "procurement.candidate.not_qualified",
        "A candidate was not qualified to bid, with the buyer's reasons and the time until "
        "which it may complain against the refusal.",
        ("company", "complain_by", "reason"),
        _("Candidate not qualified"),
    )
    CANDIDATE_QUALIFIED = (
        "procurement.candidate.qualified",
        "A candidate was qualified to bid (with the buyer's reasons, if any).",
        ("company", "reason"),
        _("Candidate qualified"),
    )
    COMMITTEE_NAMED = (
        "procurement.committee.named",
        "The buyer named the opening committee: its members and how many must release a key.",
        ("members", "threshold"),
        _("Opening committee named"),
    )
    COMMITTEE_KEY_REGISTERED = (
        "procurement.committee.key_registered",
        "A committee member registered the one-time public key made on their own machine.",
        ("position", "public_key"),
        _("Opening key registered"),
    )
    COMMITTEE_KEY_RELEASED = (
        "procurement.committee.key_released",
        "After the deadline, a committee member released their one-time private key.",
        ("position", "private_key"),
        _("Opening key released"),
    )
    SIGNING_KEY_REGISTERED = (
        "procurement.signing_key.registered",
        "A company registered a bid-signing key (with proof of possession and certificate).",
        ("certificate_sha256", "company", "fingerprint", "public_key"),
        _("Bid-signing key registered"),
    )
    SIGNING_KEY_REVOKED = (
        "procurement.signing_key.revoked",
        "A company revoked a bid-signing key: bids signed with it are refused from then on.",
        ("company", "fingerprint"),
        _("Bid-signing key revoked"),
    )
    COMPLAINT_ADMITTED = (
        "procurement.complaint.admitted",
        "The complaints body found a complaint admissible: the lots it concerns are "
        "suspended until its decision, due by the given time.",
        ("complaint", "decide_by", "lots", "reason"),
        _("Complaint admitted"),
    )
    COMPLAINT_DECIDED = (
        "procurement.complaint.decided",
        "The complaints body decided a complaint on the merits (upheld or not), with its "
        "reasons and its binding remedy; the suspension ends (unless the remedy is to amend "
        "the documents) and the time it took is given back.",
        ("complaint", "decision", "lots", "remedy", "standstill_until", "submission_deadline",
         "upheld"),
        _("Complaint decided"),
    )
    COMPLAINT_FILED = (
        "procurement.complaint.filed",
        "A company filed a complaint against the documents or the evaluation or award of a "
        "lot (the hash of its text); filing alone suspends nothing.",
        ("company", "complaint", "kind", "lots", "text_sha256"),
        _("Complaint filed"),
    )
    COMPLAINT_INADMISSIBLE = (
        "procurement.complaint.inadmissible",
        "The complaints body found a complaint inadmissible, with its reasons.",
        ("complaint", "reason"),
        _("Complaint found inadmissible"),
    )
    COMPLAINT_LAPSED = (
        "procurement.complaint.lapsed",
        "A complaint's admissibility was not ruled within the time limit: it lapsed.",
        ("complaint", "reason"),
        _("Complaint lapsed"),
    )
    COMPLAINT_REMEDIED = (
        "procurement.complaint.remedied",
        "The buyer amended the documents as an upheld complaint required: the lots resume and "
        "the time of the suspension is given back.",
        ("amendment", "complaint", "document", "lots", "submission_deadline", "version"),
        _("Documents amended after a complaint"),
    )
    COMPLAINT_SUSPENSION_LIFTED = (
        "procurement.complaint.suspension_lifted",
        "A complaint was not decided within the time limit: the lots it suspended resume "
        "(the complaint stays to be decided).",
        ("complaint", "lots", "reason", "standstill_until", "submission_deadline"),
        _("Suspension lifted"),
    )
    CONTRACT_AMENDED = (
        "procurement.contract.amended",
        "A contract's value or end date changed, with the justification (within the "
        "ceiling: applied at once), and the increase over the signed value it brings in all.",
        (
            "amendment",
            "contract",
            "cumulative_increase",
            "justification",
            "new_end_date",
            "new_value",
            "old_end_date",
            "old_value",
        ),
        _("Contract amended"),
    )
    CONTRACT_AMENDMENT_APPROVED = (
        "procurement.contract.amendment_approved",
        "A control agent of the buyer's line approved an amendment beyond the ceiling, with "
        "reasons: the contract takes its new value and end date.",
        ("amendment", "contract", "new_end_date", "new_value", "reason"),
        _("Contract amendment approved"),
    )
    CONTRACT_AMENDMENT_PROPOSED = (
        "procurement.contract.amendment_proposed",
        "The buyer proposed an amendment that raises the contract beyond the ceiling over "
        "its signed value: it waits for a control agent's approval and changes nothing yet.",
        (
            "amendment",
            "ceiling",
            "contract",
            "cumulative_increase",
            "justification",
            "new_end_date",
            "new_value",
            "old_end_date",
            "old_value",
        ),
        _("Contract amendment proposed"),
    )
    CONTRACT_AMENDMENT_REFUSED = (
        "procurement.contract.amendment_refused",
        "A control agent refused an amendment beyond the ceiling, with reasons: the contract "
        "stays as it was.",
        ("amendment", "contract", "reason"),
        _("Contract amendment refused"),
    )
    CONTRACT_COMPLETED = (
        "procurement.contract.completed",
        "A contract was completed: accepted by the buyer as carried out, or found fully paid "
        "after its end date; the value paid in all and the reason.",
        ("automatic", "contract", "final_value", "reason"),
        _("Contract completed"),
    )
    CONTRACT_COUNTERSIGNED = (
        "procurement.contract.countersigned",
        "A user of the supplier countersigned the contract over the same terms (their "
        "SHA-256) the buyer signed: the contract is in force.",
        ("company", "contract", "signer", "terms_sha256"),
        _("Contract countersigned"),
    )
    CONTRACT_PAYMENT = (
        "procurement.contract.payment",
        "A payment under a contract, for a milestone.",
        ("amount", "contract", "milestone"),
        _("Payment made"),
    )
    CONTRACT_PRICE = (
        "procurement.contract.price",
        "A unit price set in a contract (e.g. a cloud plan's price list).",
        ("code", "contract", "unit", "unit_price"),
        _("Unit price set"),
    )
    CONTRACT_SIGNED = (
        "procurement.contract.signed",
        "The buyer's procurement officer signed a contract with the awarded supplier, for a "
        "lot: its terms and their SHA-256; it is in force once the supplier countersigns.",
        ("buyer", "contract", "end_date", "lot", "signer", "start_date", "supplier",
         "terms_sha256", "value"),
        _("Contract signed"),
    )
    CONTRACT_TERMINATED = (
        "procurement.contract.terminated",
        "A contract was terminated early, with the reason.",
        ("contract", "reason"),
        _("Contract terminated"),
    )
    DOCUMENT_ADDED = (
        "procurement.document.added",
        "A tender document (or a new version of it) was published: name, size, hash.",
        ("name", "sha256", "size", "version"),
        _("Tender document published"),
    )
    DOCUMENT_SIGNED = (
        "procurement.document.signed",
        "An official document (opening report, evaluation report, award decision or "
        "contract) was issued as a PDF in one language and signed (PAdES) with its signer's "
        "certificate: the SHA-256 and size of the signed file, the step it records, and the "
        "SHA-256 of the signing certificate.",
        ("certificate_sha256", "document", "kind", "language", "sha256", "signer", "size",
         "step"),
        _("Official document signed"),
    )
    EVALUATION_DECLARATION = (
        "procurement.evaluation.declaration",
        "A member of the evaluation committee declared their interests (a member with a "
        "conflict is out), and whether the quorum is still reachable.",
        ("evaluator", "no_conflict", "quorum_reachable"),
        _("Declaration of interests"),
    )
    EVALUATION_ELIGIBILITY = (
        "procurement.evaluation.eligibility",
        "An opened bid was found eligible or not on a lot, with the reason.",
        ("bid", "compliance", "eligible", "lot", "reason"),
        _("Bid compliance checked"),
    )
    EVALUATION_ADOPTED = (
        "procurement.evaluation.adopted",
        "The evaluation report was adopted: the quorum of the evaluation committee approved "
        "this very report (its SHA-256).",
        ("approvals", "quorum", "report", "sha256"),
        _("Evaluation report adopted"),
    )
    EVALUATION_APPROVED = (
        "procurement.evaluation.approved",
        "A member of the evaluation committee approved the proposed report (its SHA-256).",
        ("member", "report", "sha256"),
        _("Evaluation report approved by a member"),
    )
    EVALUATION_COMMITTEE_NAMED = (
        "procurement.evaluation.committee_named",
        "The buyer named the evaluation committee: its members, its chair and its quorum.",
        ("chair", "members", "quorum"),
        _("Evaluation committee named"),
    )
    EVALUATION_DISSENTED = (
        "procurement.evaluation.dissented",
        "A member of the evaluation committee dissented from the proposed report, with "
        "reasons.",
        ("member", "reason", "report", "sha256"),
        _("Dissent from the evaluation report"),
    )
    EXPLANATION_ANSWERED = (
        "procurement.explanation.answered",
        "A bidder answered the request to explain its abnormally low price (the hash of "
        "the answer).",
        ("bid", "explanation", "lot", "sha256"),
        _("Low price explained"),
    )
    EXPLANATION_DECIDED = (
        "procurement.explanation.decided",
        "The evaluation committee accepted or rejected a bidder's explanation of an "
        "abnormally low price (a rejected bid is disqualified on the lot), with reasons.",
        ("accepted", "answered", "bid", "explanation", "lot", "reason"),
        _("Low price explanation decided"),
    )
    EXPLANATION_REQUESTED = (
        "procurement.explanation.requested",
        "The evaluation committee asked a bidder to explain an abnormally low price, by a "
        "deadline.",
        ("bid", "due", "explanation", "lot", "question"),
        _("Low price explanation requested"),
    )
    EVALUATION_QUALITY_SCORE = (
        "procurement.evaluation.quality_score",
        "An opened bid's quality score on a lot.",
        ("bid", "lot", "score"),
        _("Quality score given"),
    )
    OCDS_BULK_PUBLISHED = (
        "procurement.ocds.bulk_published",
        "The worker wrote a new OCDS bulk file (releases or records) of every release up to a "
        "ledger index; its SHA-256 is what /ocds/<kind>.json.gz serves until the next one.",
        ("bytes", "file", "items", "releases_up_to", "sha256"),
        _("OCDS bulk file published"),
    )
    OCDS_BULK_ALTERED = (
        "procurement.ocds.bulk_altered",
        "The worker found the current OCDS bulk file no longer hashing to the SHA-256 the "
        "ledger recorded when it was published (altered or damaged on disk); it wrote the "
        "file again in the same turn.",
        ("file", "found_sha256", "recorded_index", "recorded_sha256"),
        _("OCDS bulk file found altered"),
    )
    PLAN_CREATED = (
        "procurement.plan.created",
        "An administration's procurement plan for a year was created.",
        ("administration", "title", "year"),
        _("Procurement plan created"),
    )
    PLAN_ITEM_ADDED = (
        "procurement.plan.item_added",
        "A planned purchase was added to a procurement plan.",
        (
            "budget_line",
            "cpv",
            "description",
            "estimated_value",
            "item",
            "ocid",
            "procedure",
            "quarter",
        ),
        _("Planned purchase added"),
    )
    QUESTION_ANSWERED = (
        "procurement.question.answered",
        "The buyer answered a question (published with its answer).",
        ("answer", "question", "question_text"),
        _("Question answered"),
    )
    QUESTION_ASKED = (
        "procurement.question.asked",
        "A company asked a question during enquiries (the hash of its text).",
        ("question", "text_sha256"),
        _("Question asked"),
    )
    TENDER_AMENDED = (
        "procurement.tender.amended",
        "The buyer amended a published tender before its deadline (avis rectificatif): the "
        "rationale, the new document versions (name, version, hash, size), the compliance "
        "criteria before and after when they changed, the lots added or changed (terms "
        "before and after), the deadlines before and after, and whether the bids sealed "
        "before it must be confirmed (bids_to_confirm); bidders keep at least the legal "
        "minimum of days after it.",
        ("amendment", "bids_to_confirm", "compliance_criteria", "documents",
         "enquiry_deadline", "lots",
         "old_compliance_criteria", "old_enquiry_deadline", "old_submission_deadline",
         "rationale", "submission_deadline"),
        _("Tender amended"),
    )
    TENDER_AWARDED = (
        "procurement.tender.awarded",
        "The tender's lots were awarded, with the justification.",
        ("awards", "justification"),
        _("Tender awarded"),
    )
    TENDER_CANCELLED = (
        "procurement.tender.cancelled",
        "The tender was cancelled, with the reason.",
        ("reason",),
        _("Tender cancelled"),
    )
    TENDER_DRAFTED = (
        "procurement.tender.drafted",
        "A tender was drafted: only the hash of its details, which publication reveals.",
        ("buyer", "reference", "sha256"),
        _("Tender drafted"),
    )
    TENDER_ENQUIRIES_CLOSED = (
        "procurement.tender.enquiries_closed",
        "The enquiry period ended.",
        (),
        _("Enquiry period closed"),
    )
    TENDER_EVALUATED = (
        "procurement.tender.evaluated",
        "The evaluation report the committee proposes (its number and SHA-256): each lot's "
        "ranking of the opened bids, with the explanations of abnormally low prices.",
        ("lots", "number", "sha256"),
        _("Evaluation report proposed"),
    )
    TENDER_OPENED = (
        "procurement.tender.opened",
        "The bids were opened by the committee's released keys. The full opening report "
        "(every commitment, opened bid, rejected or missing one and why) is a public "
        "document of the tender; the entry holds its SHA-256, size and counts, and the "
        "bid tag and salt that the publication committed to.",
        ("bid_tag", "bid_tag_salt", "counts", "released", "report", "tendering_closed"),
        _("Opening of the bids"),
    )
    TENDER_PUBLISHED = (
        "procurement.tender.published",
        "A tender was published: details, lots, deadlines, criteria, its opening "
        "committee's keys and the commitment to its secret sealed-bid tag (SHA-256 of the "
        "tag with a salt that the opening report reveals).",
        (
            "bid_tag_commitment",
            "buyer",
            "committee",
            "compliance_criteria",
            "enquiry_deadline",
            "estimated_value",
            "framework",
            "lots",
            "ocid",
            "procedure",
            "reference",
            "submission_deadline",
            "title",
        ),
        _("Tender published"),
    )
    TENDER_STANDSTILL_ENDED = (
        "procurement.tender.standstill_ended",
        "The standstill period after the award ended.",
        (),
        _("Standstill period ended"),
    )
    TENDER_STANDSTILL_STARTED = (
        "procurement.tender.standstill_started",
        "The standstill period after the award started, until the given time.",
        ("until",),
        _("Standstill period started"),
    )
    TENDER_TENDERING_CLOSED = (
        "procurement.tender.tendering_closed",
        "The submission deadline passed: no bid is accepted any more.",
        (),
        _("Bid submission closed"),
    )
    TENDER_UNSUCCESSFUL = (
        "procurement.tender.unsuccessful",
        "The tender ended without an award, with the reason.",
        ("reason",),
        _("Tender unsuccessful"),
    )
