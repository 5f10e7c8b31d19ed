"""Procurement's refusals: plans, tenders, committees, bids, evaluation, awards, complaints
and contracts."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class ProcurementError(ErrorCode):
    """Public procurement: plans, tenders and their amendments, opening and evaluation
    committees, signing and opening keys, sealed bids, evaluation and award, price explanations,
    complaints, contracts and call-offs."""

    TENDER_STATE_FORBIDS = _("Cannot %(action)s a tender in state '%(state)s'.")
    CPV_CODE_INVALID = _("'%(code)s' is not a CPV code such as 72000000-5.")
    BUYER_ROLE_REQUIRED = _("Only a %(role)s of %(administration)s may do this.")
    REGISTERED_COMPANY_ONLY = _("Only a registered company may do this.")
    PLAN_YEAR_OUT_OF_RANGE = _("The year is between 2000 and 2100.")
    PLAN_EXISTS = _("%(administration)s has a plan for %(year)s already.")
    PLANNED_PROCEDURE_UNKNOWN = _("Unknown procedure %(procedure)s.")
    QUARTER_INVALID = _("The quarter is 1, 2, 3 or 4.")
    LOT_MALFORMED = _("Each lot is an object with a title, a CPV code and a value.")
    TENDER_WITHOUT_LOTS = _("A tender has at least one lot.")
    TOO_MANY_LOTS = _("A tender has at most 100 lots.")
    AMENDED_LOT_UNKNOWN = _(
        "The tender has no lot numbered %(numbers)s (or a number is given twice).")
    AMENDMENT_DROPS_LOT = _(
        "An amendment keeps every lot (lot %(numbers)s left out): a lot is withdrawn only by "
        "its cancellation, with its reasons.")
    AMENDED_LOT_CANCELLED = _("Lot %(number)s is cancelled: it is not amended.")
    LOT_ADDED_AFTER_APPLICATIONS = _(
        "A lot is added to a restricted procedure only while companies may apply to be "
        "qualified (the enquiry period).")
    LOT_ADDED_PERIOD_TOO_SHORT = _(
        "A lot added keeps the procedure's whole tendering period: %(days)s days. Extend the "
        "submission deadline to %(earliest)s UTC at least.")
    PROCEDURE_UNKNOWN = _("Unknown procedure '%(procedure)s'.")
    AWARD_CRITERIA_UNKNOWN = _("Unknown award criteria '%(criteria)s'.")
    PRICE_WEIGHT_OUT_OF_RANGE = _("With price and quality, the price weighs between 1 and 99 %.")
    STANDSTILL_OUT_OF_RANGE = _("The standstill period is 0 to 60 days.")
    PLANNED_PURCHASE_REQUIRED = _("A planned purchase of the buyer, not yet tendered, is needed.")
    CALL_OFF_MINI_COMPETITION_ONLY = _(
        "A mini-competition, and only it, is called off a framework.")
    CALL_OFF_FRAMEWORK_INVALID = _(
        "Call off only a completed framework agreement of the same buyer.")
    TOO_MANY_CRITERIA = _("Give at most 30 distinct compliance criteria.")
    SEARCH_PAST_WINDOW = _(
        "A search pages through its first %(window)s matches: narrow it, or download every "
        "tender from the bulk OCDS file %(url)s.")
    SIMPLIFIED_OVER_THRESHOLD = _(
        "A simplified consultation is for purchases up to %(threshold)s dinars; this one is "
        "%(total)s.")
    TENDER_NUMBERING_FAILED = _("Could not number the tender; try again.")
    DEADLINE_WITHOUT_TIME_ZONE = _("Deadlines carry a time zone.")
    ENQUIRY_DEADLINE_PAST = _("The enquiry deadline is in the past.")
    SUBMISSION_BEFORE_ENQUIRY = _("The submission deadline comes after the enquiry deadline.")
    SUBMISSION_DEADLINE_TOO_FAR = _("The submission deadline is within a year.")
    TENDER_PERIOD_TOO_SHORT = _(
        "A %(procedure)s leaves bidders at least %(days)s days after publication.")
    NEGOTIATED_WITHOUT_INVITATION = _("A negotiated procedure invites at least one company.")
    OPENING_COMMITTEE_MISSING = _("Name the opening committee before publishing.")
    OPENING_KEYS_MISSING = _(
        "Every committee member registers an opening key before publication; missing: member(s) "
        "%(missing)s.")
    OPENING_COMMITTEE_AFTER_PUBLICATION = _("The committee is named before publication.")
    OPENING_COMMITTEE_SIZE = _("A committee has 1 to %(max)s distinct members.")
    OPENING_THRESHOLD_INVALID = _("The threshold is between 1 and the number of members.")
    NOT_A_PUBLIC_AGENT = _("%(user)s is not a public agent.")
    OPENING_COMMITTEE_ONLY = _(
        "Only a member of the opening committee of %(reference)s may do this.")
    OPENING_KEY_AFTER_PUBLICATION = _("Opening keys are registered before publication.")
    OPENING_KEY_INVALID = _("An opening key is a 32-byte X25519 public key.")
    OPENING_KEY_SHARED = _("Each member registers a key of their own.")
    OPENING_KEY_RELEASE_EARLY = _(
        "Opening keys are released only after the submission deadline (%(deadline)s UTC).")
    TENDER_CANCELLED_NOT_OPENED = _("This tender is cancelled: its bids are never opened.")
    OPENING_KEY_RELEASED_ALREADY = _("Your opening key is released already.")
    OPENING_KEY_MALFORMED = _("This is not an opening key: %(error)s.")
    OPENING_KEY_NOT_REGISTERED = _("This key is not the one you registered for this tender.")
    SIGNING_KEY_INVALID = _("A signing key is a 32-byte Ed25519 public key.")
    PROOF_OF_POSSESSION_INVALID = _(
        "The proof of possession does not verify: sign the registration message with the new "
        "key.")
    SIGNING_KEY_REGISTERED_ALREADY = _("This key is registered already.")
    NO_SUCH_SIGNING_KEY = _("No such key.")
    SIGNING_KEY_REVOKED_ALREADY = _("This key is revoked already.")
    PUBLISHED_DOCUMENTS_NEED_AMENDMENT = _(
        "A published tender's documents change only by an amendment, with its rationale (POST "
        "…/amendments, or the tender page).")
    AMENDMENT_OF_DRAFT = _(
        "A draft is not published: change its documents directly; amendments are for published "
        "tenders.")
    AMENDMENT_AFTER_DEADLINE = _(
        "A tender is amended only before its submission deadline (%(deadline)s UTC).")
    AMENDMENT_TOO_MANY_DOCUMENTS = _("An amendment carries at most %(max)s documents.")
    AMENDMENT_DOCUMENT_NAMES_REPEATED = _("Each document of an amendment has its own name.")
    ENQUIRY_PERIOD_OVER = _("The enquiry period is over: its deadline no longer changes.")
    AMENDMENT_EMPTY = _(
        "An amendment brings new documents, new compliance criteria, changed or new lots, or "
        "later deadlines.")
    AMENDMENT_PERIOD_TOO_SHORT = _(
        "After an amendment bidders keep at least %(days)s days before the submission deadline: "
        "extend it to %(earliest)s UTC or later.")
    APPLICATION_OUTSIDE_ENQUIRY = _(
        "Candidates apply to a restricted procedure during its enquiry period.")
    APPLIED_ALREADY = _("Your company has applied already.")
    QUALIFICATION_AFTER_DEADLINE = _("Candidates are qualified before the submission deadline.")
    REFUSAL_TOO_LATE = _(
        "A candidate is refused at least %(days)s days before the submission deadline: the "
        "time it has to complain against the refusal.")
    QUALIFIED_BY_COMPLAINTS_BODY = _(
        "The complaints body qualified this candidate: the buyer does not refuse it again.")
    QUALIFICATION_COMPLAINT_LATE = _(
        "A refused candidate complains against its refusal within %(days)s days of it, and "
        "before the submission deadline: the time ran out on %(due)s UTC.")
    QUESTION_AFTER_DEADLINE = _("Questions are asked before the enquiry deadline.")
    ANSWER_AFTER_DEADLINE = _("Questions are answered before the submission deadline.")
    ANSWERED_ALREADY = _("This question is answered already.")
    BID_KEY_NOT_REGISTERED = _(
        "The bid is signed by a key that is not registered for your company: register it first "
        "(sahab bid keygen, then register).")
    BID_KEY_REVOKED = _(
        "The bid is signed by a key revoked on %(revoked_at)s UTC: sign with a valid key.")
    BID_MALFORMED = _("The sealed bid is malformed: %(error)s.")
    ENVELOPE_OTHER_TENDER = _("This envelope is sealed for %(sealed_for)s, not %(reference)s.")
    ENVELOPE_OTHER_COMPANY = _("This envelope names another company.")
    ENVELOPE_OTHER_COMMITTEE = _("The envelope is not sealed to this tender's opening committee.")
    BID_SIGNATURE_REFUSED = _("The bid's signature is refused: %(error)s.")
    BIDDER_NOT_ADMITTED = _("Your company is not admitted to bid in this procedure.")
    ENVELOPE_REQUIRED = _("Send the sealed envelope (sahab-bid/2).")
    ENVELOPE_SUBMITTED_ALREADY = _("This envelope is submitted already.")
    NO_SUCH_BID = _("No such bid.")
    BID_NOT_WITHDRAWABLE = _("Only a submitted bid can be withdrawn, before the deadline.")
    BID_NOT_TO_CONFIRM = _("Only a submitted bid that an amendment asks to confirm can be "
                           "confirmed.")
    BID_CONFIRMATION_LATE = _("Bids for %(reference)s were due by %(deadline)s UTC; it is "
                              "too late to confirm this one.")
    TENDERING_CLOSE_NOT_RECORDED = _(
        "The ledger does not record the close of tendering where expected.")
    BID_TAG_ALTERED = _(
        "The tender's sealed-bid tag is not the one its publication committed to on the "
        "ledger: the database was altered. The bids stay sealed until the tag is restored.")
    OPENING_NEEDS_CLOSED_TENDER = _("Only a tender whose submission deadline passed is opened.")
    OPENING_BEFORE_DEADLINE = _("Bids are never opened before the deadline.")
    OPENING_KEYS_NOT_RELEASED = _(
        "%(missing)s more committee member(s) must release their opening keys first.")
    DECLARATION_OUT_OF_TIME = _("Evaluators declare their interests when the evaluation starts.")
    DECLARED_ALREADY = _("You have declared already.")
    NOT_UNDER_EVALUATION = _("The tender is not under evaluation.")
    DECLARATION_REQUIRED = _("Declare that you have no conflict of interest first.")
    NONCOMPLIANT_BID_ELIGIBLE = _("A bid that fails a compliance criterion is not eligible.")
    PRICE_ONLY_AWARD = _("This tender is awarded on price alone.")
    SCORE_OUT_OF_RANGE = _("The score is a number from 0 to 100.")
    LOT_CANCELLED = _("Lot %(lot)s is cancelled.")
    LOT_AWARDED = _("Lot %(lot)s is awarded: its evaluation is final.")
    ELIGIBILITY_UNDECIDED = _("Decide the eligibility of every bid for lot %(lot)s first.")
    QUALITY_SCORES_MISSING = _("Every eligible bid of lot %(lot)s needs quality scores first.")
    NOTHING_TO_EVALUATE = _("Every lot is awarded or cancelled: there is nothing to evaluate.")
    EVALUATION_INCOMPLETE = _("Complete the evaluation before the award.")
    EVALUATION_INVALIDATED = _(
        "An upheld complaint invalidated lot %(lot)s's evaluation: evaluate it again before the "
        "award.")
    LOT_SUSPENDED = _("Lot %(lot)s is suspended by an admitted complaint.")
    AWARD_NOT_RANKED = _("Lot %(lot)s: choose among its ranked bids.")
    AWARD_ONE_SUPPLIER = _("Lot %(lot)s goes to one supplier.")
    AWARD_JUSTIFICATION_REQUIRED = _(
        "Awarding other than the first ranked bid needs a justification.")
    ABNORMALLY_LOW_UNEXPLAINED = _(
        "Lot %(lot)s: the price of %(company)s is abnormally low; it is awarded only once the "
        "evaluation committee has accepted the bidder's explanation.")
    EVALUATION_REPORT_NOT_ADOPTED = _(
        "The evaluation report is not adopted: the quorum of the evaluation committee must "
        "approve the current report before the award.")
    NO_ELIGIBLE_BID = _("No lot has an eligible bid: declare the tender unsuccessful.")
    EVALUATION_COMMITTEE_ONLY = _(
        "Only a member of the evaluation committee of %(reference)s may do this.")
    OFFICER_OR_CHAIR_ONLY = _(
        "Only a procurement officer of the buyer or the chair of the evaluation committee may "
        "do this.")
    EVALUATION_COMMITTEE_MISSING = _("Name the evaluation committee first.")
    EVALUATION_QUORUM_LOST = _(
        "Members who declared a conflict of interest leave too few to reach the quorum: name "
        "the evaluation committee again.")
    EVALUATION_COMMITTEE_TOO_LATE = _(
        "The evaluation committee is named before or during the evaluation.")
    EVALUATION_MEMBERS_REPEATED = _("The members of the evaluation committee are distinct.")
    EVALUATION_COMMITTEE_SIZE = _("An evaluation committee has 2 to %(max)s members.")
    QUORUM_NOT_A_NUMBER = _("The quorum is a number of members.")
    QUORUM_OUT_OF_RANGE = _("The quorum is at least 2 and at most the number of members.")
    CHAIR_NOT_MEMBER = _("The chair is one of the members.")
    NOT_AN_EVALUATOR = _("%(user)s is not an evaluator of %(administration)s.")
    QUORUM_UNREACHABLE = _(
        "Members who declared a conflict of interest leave too few to reach the quorum.")
    NO_REPORT_PENDING = _("No evaluation report waits for approval.")
    REPORT_CHANGED = _(
        "The evaluation report changed: read report no. %(number)s (SHA-256 %(sha256)s) and "
        "approve it.")
    REPORT_APPROVED_ALREADY = _("You have approved or dissented from this report already.")
    EXPLANATION_NOT_APPLICABLE = _(
        "Only an eligible bid the evaluation ranked abnormally low is asked to explain its "
        "price.")
    EXPLANATION_ASKED_ALREADY = _("An explanation of this price is asked already.")
    EXPLANATION_OTHER_COMPANY = _("Only the company asked may explain its price.")
    EXPLANATION_CLOSED = _("This request is answered or decided already.")
    EXPLANATION_TIME_OVER = _("The time to explain ended on %(due)s.")
    EXPLANATION_MISSING = _("The bidder has not explained its price: there is nothing to accept.")
    EXPLANATION_TIME_RUNNING = _("The bidder may explain its price until %(due)s.")
    EXPLANATION_DECIDED_ALREADY = _("This explanation is decided already.")
    LOTS_NOT_NUMBERS = _("Lots are given by their numbers.")
    LOT_NOT_OPEN_TO_COMPLAINTS = _("The tender has no lot %(lot)s open to complaints.")
    COMPLAINT_LOT_REQUIRED = _(
        "A complaint against an evaluation or award concerns one lot: give its number.")
    COMPLAINT_BIDDERS_ONLY = _(
        "Only the bidders of lot %(lot)s complain against its evaluation or award.")
    COMPLAINT_OUTSIDE_STANDSTILL = _(
        "Lot %(lot)s's award is complained against during its standstill period only.")
    COMPLAINT_OUT_OF_TIME = _(
        "Complaints are filed against the documents before the submission deadline, or against "
        "a lot's evaluation or award during its standstill.")
    TOO_MANY_COMPLAINTS = _(
        "Your company has %(limit)s undecided complaint(s) on this tender, the most it may "
        "have: wait for their decisions.")
    COMPLAINTS_BODY_ONLY = _(
        "Complaints are ruled on by the complaints body, independent of the buyer.")
    COMPLAINT_LAPSED = _(
        "The time limit to rule on this complaint's admissibility passed: it lapsed.")
    ADMISSIBILITY_RULED_ALREADY = _("The admissibility of this complaint is ruled already.")
    NOTHING_TO_SUSPEND = _(
        "The procedure or the lots concerned are over: nothing is left to suspend; rule the "
        "complaint inadmissible.")
    CONTRACT_SIGNED_INADMISSIBLE = _(
        "A contract is signed for a lot concerned: rule the complaint inadmissible.")
    ADMISSIBILITY_FIRST = _("Rule on the complaint's admissibility first.")
    COMPLAINT_DECIDED_ALREADY = _("This complaint is decided already.")
    REMEDY_REQUIRED = _("An upheld complaint names its remedy: %(allowed)s.")
    REJECTION_WITHOUT_REMEDY = _("A rejected complaint has no remedy.")
    CONTRACT_SIGNED_AWARD_FINAL = _(
        "A contract is signed for a lot concerned: its award can no longer be undone here.")
    CONTRACT_DURING_STANDSTILL = _("A contract is signed once the standstill period is over.")
    CONTRACT_ENDS_BEFORE_START = _("The contract ends after it starts.")
    CONTRACT_EXISTS = _("This award has its contract already.")
    SUPPLIER_COUNTERSIGNS = _("Only the contract's supplier countersigns it.")
    CONTRACT_TERMS_CHANGED = _("The contract's terms are not the ones the buyer signed.")
    CONTRACT_TERMS_MISMATCH = _(
        "These are not the contract's terms: read them again before signing.")
    AMENDMENT_PENDING = _("An amendment of this contract waits for approval: it is decided first.")
    AMENDMENT_WITHOUT_CHANGE = _("An amendment changes the value or the end date.")
    VALUE_BELOW_PAID = _("%(paid)s is paid already: the value cannot go below it.")
    CEILING_AUDITOR_ONLY = _(
        "Only an auditor of the buyer's ministry line approves or refuses an amendment beyond "
        "the ceiling.")
    AMENDMENT_SELF_APPROVAL = _("Whoever proposed an amendment cannot approve or refuse it.")
    AMENDMENT_NOT_PENDING = _("This amendment is not waiting for approval.")
    PAYMENT_EXCEEDS_VALUE = _(
        "Paying %(amount)s would exceed the contract value (%(paid)s paid of %(value)s).")
    CALL_OFF_NEEDS_ACTIVE_FRAMEWORK = _(
        "Direct call-offs are placed under an active framework agreement.")
    CALL_OFF_ABOVE_PRICE = _("The framework's price is %(price)s; a call-off cannot pay more.")
    PRICE_RECORDED_ALREADY = _("The contract already has a price for %(code)s.")
    CERTIFICATE_REQUIRED = _("Give the certificate of this key issued by the national CA.")
    CERTIFICATE_NOT_PEM = _("The certificate is not a PEM X.509 certificate.")
    CERTIFICATE_OTHER_KEY = _("The certificate is for another key.")
    CERTIFICATE_NOT_CURRENT = _("The certificate is not valid today.")
    CERTIFICATE_NOT_NATIONAL_CA = _("The certificate is not issued by the national CA.")
    NO_TENDER = _("No tender %(reference)s.")
    UNKNOWN_ADMINISTRATION = _("No administration %(code)s.")
    NO_FRAMEWORK_AGREEMENT = _("No framework agreement %(framework)s.")
    NO_PLANNED_PURCHASE = _("No planned purchase %(plan_item)s.")
    INVITED_COMPANY_UNKNOWN = _("An invited company does not exist.")
    ENVELOPE_NOT_ASCII = _("The envelope is ASCII text.")
    NO_USER = _("No user %(username)s.")
    NO_OPENING_REPORT = _("No opening report for %(reference)s.")
    NO_OPENED_BID = _("No opened bid %(bid)s for lot %(lot)s.")
    NO_SUCH_EXPLANATION = _("No such explanation.")
    NO_COMPLAINT = _("No complaint %(complaint)s.")
    CURSOR_FOREIGN = _("This cursor was not given by this server.")
    NOT_A_CANDIDATE = _("This company is not a candidate.")
    AMENDMENT_ADVANCES_ENQUIRY = _(
        "An amendment never brings the enquiry deadline forward (%(deadline)s UTC): it may only "
        "extend it.")
    AMENDMENT_ADVANCES_SUBMISSION = _(
        "An amendment never brings the submission deadline forward (%(deadline)s UTC): it may "
        "only extend it.")
    BID_LATE = _("Bids for %(reference)s were due by %(deadline)s UTC; this one is late.")
    NOT_TAKING_BIDS = _("This tender does not take bids now.")
    COMPLIANCE_UNCHECKED = _("Check every compliance criterion of the tender: %(criteria)s")
    FRAMEWORK_EXHAUSTED = _(
        "The framework agreement has %(left)s left; this call-off is %(value)s.")
    COUNTERSIGNATURE_NOT_AWAITED = _(
        "Only a contract awaiting its countersignature is countersigned (this contract is "
        "%(status)s).")
    AMENDMENT_NEEDS_ACTIVE = _("Only an active contract is amended (this contract is %(status)s).")
    PAYMENT_NEEDS_ACTIVE = _("Payments are made on active contracts (this contract is %(status)s).")
    COMPLETION_NEEDS_ACTIVE = _(
        "Only an active contract is completed (this contract is %(status)s).")
    TERMINATION_NEEDS_ACTIVE = _(
        "Only an active contract is terminated (this contract is %(status)s).")
    PRICE_NEEDS_ACTIVE = _("Prices are recorded on active contracts (this contract is %(status)s).")
