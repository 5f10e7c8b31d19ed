"""Demo data of the directory: Tunisia's ministries, some of their directorates, public
bodies and municipalities, demo agents for every role and a dozen (fictitious) companies."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError

from sahab.directory import selectors, services
from sahab.directory.models import Administration, AdministrationKind, Agent, Company, Role
from sahab.directory.selectors import SYSTEM

K = AdministrationKind

# (code, kind, parent, French name, Arabic name, English name, acronym, mail domain)
ADMINISTRATIONS: list[tuple] = [
    ("PG", K.PRESIDENCY, None, "Présidence du Gouvernement", "رئاسة الحكومة",
     "Presidency of the Government", "", "pm.gov.tn"),
    ("MI", K.MINISTRY, None, "Ministère de l'Intérieur", "وزارة الداخلية",
     "Ministry of the Interior", "", "interieur.gov.tn"),
    ("MDN", K.MINISTRY, None, "Ministère de la Défense nationale", "وزارة الدفاع الوطني",
     "Ministry of National Defence", "", "defense.gov.tn"),
    ("MJ", K.MINISTRY, None, "Ministère de la Justice", "وزارة العدل",
     "Ministry of Justice", "", "justice.gov.tn"),
    ("MAE", K.MINISTRY, None,
     "Ministère des Affaires étrangères, de la Migration et des Tunisiens à l'étranger",
     "وزارة الشؤون الخارجية والهجرة والتونسيين بالخارج",
     "Ministry of Foreign Affairs, Migration and Tunisians Abroad", "", "diplomatie.gov.tn"),
    ("MF", K.MINISTRY, None, "Ministère des Finances", "وزارة المالية",
     "Ministry of Finance", "", "finances.gov.tn"),
    ("MEP", K.MINISTRY, None, "Ministère de l'Économie et de la Planification",
     "وزارة الاقتصاد والتخطيط", "Ministry of Economy and Planning", "", "economie.gov.tn"),
    ("MIME", K.MINISTRY, None, "Ministère de l'Industrie, des Mines et de l'Énergie",
     "وزارة الصناعة والمناجم والطاقة", "Ministry of Industry, Mines and Energy", "",
     "industrie.gov.tn"),
    ("MCDE", K.MINISTRY, None, "Ministère du Commerce et du Développement des exportations",
     "وزارة التجارة وتنمية الصادرات", "Ministry of Trade and Export Development", "",
     "commerce.gov.tn"),
    ("MARHP", K.MINISTRY, None,
     "Ministère de l'Agriculture, des Ressources hydrauliques et de la Pêche maritime",
     "وزارة الفلاحة والموارد المائية والصيد البحري",
     "Ministry of Agriculture, Water Resources and Fisheries", "", "agriculture.gov.tn"),
    ("MDEAF", K.MINISTRY, None, "Ministère des Domaines de l'État et des Affaires foncières",
     "وزارة أملاك الدولة والشؤون العقارية", "Ministry of State Property and Land Affairs", "",
     "domaines.gov.tn"),
    ("MEH", K.MINISTRY, None, "Ministère de l'Équipement et de l'Habitat",
     "وزارة التجهيز والإسكان", "Ministry of Equipment and Housing", "", "equipement.gov.tn"),
    ("MT", K.MINISTRY, None, "Ministère du Transport", "وزارة النقل",
     "Ministry of Transport", "", "transport.gov.tn"),
    ("MTC", K.MINISTRY, None, "Ministère des Technologies de la communication",
     "وزارة تكنولوجيات الاتصال", "Ministry of Communication Technologies", "", "mtc.gov.tn"),
    ("ME", K.MINISTRY, None, "Ministère de l'Éducation", "وزارة التربية",
     "Ministry of Education", "", "education.gov.tn"),
    ("MESRS", K.MINISTRY, None,
     "Ministère de l'Enseignement supérieur et de la Recherche scientifique",
     "وزارة التعليم العالي والبحث العلمي", "Ministry of Higher Education and Scientific "
     "Research", "", "mes.gov.tn"),
    ("MS", K.MINISTRY, None, "Ministère de la Santé", "وزارة الصحة",
     "Ministry of Health", "", "sante.gov.tn"),
    ("MAS", K.MINISTRY, None, "Ministère des Affaires sociales", "وزارة الشؤون الاجتماعية",
     "Ministry of Social Affairs", "", "social.gov.tn"),
    ("MEFP", K.MINISTRY, None, "Ministère de l'Emploi et de la Formation professionnelle",
     "وزارة التشغيل والتكوين المهني", "Ministry of Employment and Vocational Training", "",
     "emploi.gov.tn"),
    ("MFFES", K.MINISTRY, None,
     "Ministère de la Famille, de la Femme, de l'Enfance et des Seniors",
     "وزارة الأسرة والمرأة والطفولة وكبار السن",
     "Ministry of Family, Women, Children and Seniors", "", "femmes.gov.tn"),
    ("MAC", K.MINISTRY, None, "Ministère des Affaires culturelles", "وزارة الشؤون الثقافية",
     "Ministry of Cultural Affairs", "", "culture.gov.tn"),
    ("MJS", K.MINISTRY, None, "Ministère de la Jeunesse et des Sports", "وزارة الشباب والرياضة",
     "Ministry of Youth and Sports", "", "sport.gov.tn"),
    ("MTOUR", K.MINISTRY, None, "Ministère du Tourisme", "وزارة السياحة",
     "Ministry of Tourism", "", "tourisme.gov.tn"),
    ("MAR", K.MINISTRY, None, "Ministère des Affaires religieuses", "وزارة الشؤون الدينية",
     "Ministry of Religious Affairs", "", "religion.gov.tn"),
    ("MENV", K.MINISTRY, None, "Ministère de l'Environnement", "وزارة البيئة",
     "Ministry of the Environment", "", "environnement.gov.tn"),
    # Directorates and units
    ("MF-DGI", K.GENERAL_DIRECTORATE, "MF", "Direction générale des impôts",
     "الإدارة العامة للأداءات", "General Directorate of Taxes", "DGI", None),
    ("MF-DGCPR", K.GENERAL_DIRECTORATE, "MF",
     "Direction générale de la comptabilité publique et du recouvrement",
     "الإدارة العامة للمحاسبة العمومية والاستخلاص",
     "General Directorate of Public Accounting and Collection", "DGCPR", None),
    ("MF-DOUANE", K.GENERAL_DIRECTORATE, "MF", "Direction générale des douanes",
     "الإدارة العامة للديوانة", "General Directorate of Customs", "", "douane.gov.tn"),
    ("MF-DAF", K.DIRECTORATE, "MF", "Direction des affaires financières et des achats",
     "إدارة الشؤون المالية والشراءات", "Directorate of Finance and Purchasing", "DAF", None),
    ("MF-DSI", K.UNIT, "MF", "Centre informatique du ministère des Finances",
     "مركز الإعلامية لوزارة المالية", "IT Centre of the Ministry of Finance", "CIMF", None),
    ("MTC-DGTI", K.GENERAL_DIRECTORATE, "MTC",
     "Direction générale des technologies de l'information",
     "الإدارة العامة لتكنولوجيا المعلومات", "General Directorate of Information Technology",
     "", None),
    ("MTC-UAE", K.UNIT, "MTC", "Unité de l'administration électronique",
     "وحدة الإدارة الإلكترونية", "e-Government Unit", "", None),
    ("MI-DGCL", K.GENERAL_DIRECTORATE, "MI", "Direction générale des collectivités locales",
     "الإدارة العامة للجماعات المحلية", "General Directorate of Local Authorities", "", None),
    ("MS-DAF", K.DIRECTORATE, "MS", "Direction des affaires financières",
     "إدارة الشؤون المالية", "Directorate of Financial Affairs", "", None),
    ("PG-HAICOP", K.AGENCY, "PG", "Haute Instance de la Commande Publique",
     "الهيئة العليا للطلب العمومي", "High Authority for Public Procurement", "HAICOP",
     "haicop.gov.tn"),
    # Public agencies and enterprises
    ("CNI", K.AGENCY, "MTC", "Centre National de l'Informatique", "المركز الوطني للإعلامية",
     "National Computer Centre", "CNI", "cni.gov.tn"),
    ("ANCS", K.AGENCY, "MTC", "Agence Nationale de la Cybersécurité",
     "الوكالة الوطنية للسلامة السيبرنية", "National Cybersecurity Agency", "ANCS",
     "ancs.gov.tn"),
    ("INS", K.AGENCY, "MEP", "Institut National de la Statistique", "المعهد الوطني للإحصاء",
     "National Institute of Statistics", "INS", "ins.gov.tn"),
    ("CNSS", K.AGENCY, "MAS", "Caisse Nationale de Sécurité Sociale",
     "الصندوق الوطني للضمان الاجتماعي", "National Social Security Fund", "CNSS",
     "cnss.gov.tn"),
    ("STEG", K.PUBLIC_ENTERPRISE, "MIME", "Société Tunisienne de l'Électricité et du Gaz",
     "الشركة التونسية للكهرباء والغاز", "Tunisian Electricity and Gas Company", "STEG",
     "steg.com.tn"),
    ("SONEDE", K.PUBLIC_ENTERPRISE, "MARHP",
     "Société Nationale d'Exploitation et de Distribution des Eaux",
     "الشركة الوطنية لاستغلال وتوزيع المياه", "National Water Distribution Company", "SONEDE",
     "sonede.com.tn"),
    # Independent bodies and municipalities
    ("CDC", K.INDEPENDENT_BODY, None, "Cour des comptes", "محكمة المحاسبات",
     "Court of Audit", "", "courdescomptes.gov.tn"),
    ("INLUCC", K.INDEPENDENT_BODY, None, "Instance Nationale de Lutte Contre la Corruption",
     "الهيئة الوطنية لمكافحة الفساد", "National Anti-Corruption Authority", "INLUCC",
     "inlucc.gov.tn"),
    ("COM-TUNIS", K.MUNICIPALITY, None, "Commune de Tunis", "بلدية تونس",
     "Municipality of Tunis", "", "commune-tunis.gov.tn"),
    ("COM-SFAX", K.MUNICIPALITY, None, "Commune de Sfax", "بلدية صفاقس",
     "Municipality of Sfax", "", "commune-sfax.gov.tn"),
    ("COM-SOUSSE", K.MUNICIPALITY, None, "Commune de Sousse", "بلدية سوسة",
     "Municipality of Sousse", "", "commune-sousse.gov.tn"),
    ("COM-KAIROUAN", K.MUNICIPALITY, None, "Commune de Kairouan", "بلدية القيروان",
     "Municipality of Kairouan", "", "commune-kairouan.gov.tn"),
]

R = Role
# (username, first name, last name, administration, roles, job title)
AGENTS: list[tuple] = [
    ("admin", "Amel", "Ben Salah", "MTC-UAE", [R.PLATFORM_ADMIN], "Administratrice de la plateforme"),
    ("admin.finances", "Karim", "Trabelsi", "MF", [R.ADMINISTRATION_ADMIN], "Administrateur SI"),
    ("achats.finances", "Sonia", "Gharbi", "MF-DAF", [R.PROCUREMENT_OFFICER], "Chef de service des achats"),
    ("eval.finances", "Mehdi", "Jlassi", "MF-DAF", [R.EVALUATOR], "Membre de la commission"),
    ("commission.finances", "Hela", "Ferchichi", "MF-DAF", [R.EVALUATOR], "Présidente de la commission d'évaluation"),
    ("finance.finances", "Leila", "Bouazizi", "MF-DAF", [R.FINANCE], "Contrôleuse des dépenses"),
    ("it.finances", "Walid", "Hammami", "MF-DSI", [R.IT_OFFICER], "Ingénieur systèmes"),
    ("admin.sante", "Nadia", "Mejri", "MS", [R.ADMINISTRATION_ADMIN], "Administratrice SI"),
    ("achats.sante", "Hichem", "Baccouche", "MS-DAF", [R.PROCUREMENT_OFFICER, R.EVALUATOR], "Acheteur public"),
    ("eval.sante", "Sarra", "Mansouri", "MS-DAF", [R.EVALUATOR], "Pharmacienne, membre de la commission"),
    ("it.sante", "Rim", "Chaabane", "MS", [R.IT_OFFICER, R.FINANCE], "Responsable informatique"),
    ("it.cni", "Sami", "Karoui", "CNI", [R.IT_OFFICER], "Architecte cloud"),
    ("auditeur.cdc", "Fatma", "Ayari", "CDC", [R.AUDITOR], "Conseillère à la Cour des comptes"),
    ("auditeur.haicop", "Yassine", "Dridi", "PG-HAICOP", [R.COMPLAINTS_BODY], "Contrôleur de la commande publique"),
    ("achats.tunis", "Olfa", "Sassi", "COM-TUNIS", [R.PROCUREMENT_OFFICER, R.FINANCE], "Secrétaire générale adjointe"),
    ("eval.tunis", "Anis", "Zouari", "COM-TUNIS", [R.EVALUATOR], "Ingénieur principal"),
    ("commission.tunis", "Mouna", "Hamdi", "COM-TUNIS", [R.EVALUATOR], "Architecte, membre de la commission"),
    ("controle.tunis", "Hatem", "Mabrouk", "COM-TUNIS", [R.AUDITOR], "Commission municipale de contrôle des marchés"),
    ("achats.cni", "Ines", "Belhadj", "CNI", [R.PROCUREMENT_OFFICER, R.EVALUATOR, R.FINANCE], "Responsable des marchés"),
    ("eval.cni", "Tarek", "Ghanmi", "CNI", [R.EVALUATOR], "Ingénieur, membre de la commission"),
]

# (name, legal form, matricule fiscal, city, cloud provider?, admin username, address,
#  years since registration). Kairouan Systèmes and Djerba Digital share an address
#  and Nabeul Conseil is weeks old: cases that the integrity indicators should catch.
COMPANIES: list[tuple] = [
    ("Carthage Cloud", "SA", "1402317K/A/M/000", "Tunis", True, "carthage.cloud", "Rue du Lac Léman, Les Berges du Lac", 9),
    ("Medina Data Services", "SARL", "1523694B/A/M/000", "Ariana", True, "medina.data", "Technopôle El Ghazala", 7),
    ("Jasmin Hosting", "SA", "1187420R/A/M/000", "Sousse", True, "jasmin.hosting", "Avenue Léopold Senghor", 12),
    ("Sahel Informatique", "SARL", "0987512P/A/M/000", "Monastir", False, "sahel.info", "Route de Khniss", 15),
    ("Atlas Réseaux", "SA", "1342218W/A/M/000", "Sfax", False, "atlas.reseaux", "Route de Tunis km 4", 10),
    ("Kairouan Systèmes", "SUARL", "1612078F/A/P/000", "Tunis", False, "kairouan.sys", "12 rue de Marseille", 4),
    ("Djerba Digital", "SARL", "1498763H/A/M/000", "Tunis", False, "djerba.digital", "12 rue de Marseille", 6),
    ("Bizerte Logiciels", "SARL", "1276530C/A/M/000", "Bizerte", False, "bizerte.log", "Avenue Habib Bougatfa", 11),
    ("Tozeur Énergie IT", "SA", "1556102M/A/M/000", "Tozeur", False, "tozeur.it", "Route de Nefta", 5),
    ("Nabeul Conseil", "SUARL", "1701945T/B/P/000", "Nabeul", False, "nabeul.conseil", "Avenue Farhat Hached", 0),
    ("Gafsa Bâtiment", "SA", "0876234L/A/M/000", "Gafsa", False, "gafsa.batiment", "Cité des Jeunes", 20),
    ("Monastir Fournitures de Bureau", "SARL", "1433871X/A/M/000", "Monastir", False,
     "monastir.fournitures", "Avenue de l'Environnement", 8),
]

User = get_user_model()


def _password(previous: dict, **attributes: str) -> str:
    """The login's password of the previous run, else a fresh one that the password rules
    accept for this user: a random draw can, rarely, resemble its address or its name."""
    for user in previous.get("users", []):
        if user.get("username") == attributes["username"]:
            return user["password"]
    stand_in = User(**attributes)
    while True:
        candidate = "demo-" + secrets.token_urlsafe(9)
        try:
            password_validation.validate_password(candidate, stand_in)
        except ValidationError:
            continue
        return candidate


def _ensure_password(user, password: str) -> None:
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])


def _load_administrations() -> dict[str, Administration]:
    by_code = {a.code: a for a in Administration.objects.all()}
    for code, kind, parent, fr, ar, en, acronym, domain in ADMINISTRATIONS:
        if code not in by_code:
            by_code[code] = services.create_administration(
                actor=SYSTEM, code=code, kind=kind, parent=by_code.get(parent) if parent else None,
                name_fr=fr, name_ar=ar, name_en=en, acronym=acronym, mail_domain=domain)
    return by_code


def _load_agents(previous: dict, by_code: dict) -> list[dict]:
    users = []
    for username, first, last, code, roles, title in AGENTS:
        domain = by_code[code].mail_domain or _domain_of(by_code[code], by_code)
        email = f"{username.split('.')[0]}@{domain}"
        password = _password(previous, username=username, email=email, first_name=first,
                             last_name=last)
        agent = Agent.objects.filter(user__username=username).first()
        if agent is None:
            agent, _ = services.create_agent(
                actor=SYSTEM, administration=by_code[code], username=username, email=email,
                first_name=first, last_name=last, roles=roles, title=title, password=password)
        _ensure_password(agent.user, password)
        users.append({"username": username, "password": password,
                      "role": ", ".join(str(Role(r).label) for r in roles),
                      "administration": by_code[code].name_fr, "kind": "agent"})
    return users


def _domain_of(admin: Administration, by_code: dict) -> str:
    """A unit without its own domain uses the nearest ancestor's."""
    for code in selectors.lineage_codes(admin):
        if by_code[code].mail_domain:
            return by_code[code].mail_domain
    return "gov.tn"


def _load_companies(previous: dict) -> list[dict]:
    import datetime as dt

    from django.utils import timezone

    users = []
    for name, form, mf, city, provider, username, address, years in COMPANIES:
        password = _password(previous, username=username, email=f"{username}@example.tn",
                             first_name="Demo", last_name=name)
        company = Company.objects.filter(name=name).first()
        if company is None:
            company = services.register_company(
                actor=SYSTEM, name=name, legal_form=form, matricule_fiscal=mf, city=city,
                address=address, email=f"contact@{username.replace('.', '-')}.com.tn",
                is_bidder=True, is_cloud_provider=provider, admin_username=username,
                admin_email=f"{username}@example.tn", admin_first_name="Demo",
                admin_last_name=name, admin_password=password)[0]
            # the companies existed long before the platform (one did not)
            age = dt.timedelta(days=365 * years) if years else dt.timedelta(days=40)
            Company.objects.filter(pk=company.pk).update(created_at=timezone.now() - age)
        _ensure_password(User.objects.get(username=username), password)
        users.append({"username": username, "password": password,
                      "role": "cloud provider" if provider else "bidder",
                      "administration": name, "kind": "company"})
    return users


def _load_tokens(previous: dict) -> list[dict]:
    """One API token for the platform admin and one for an IT officer."""
    tokens = []
    kept = {t["username"]: t["token"] for t in previous.get("api_tokens", [])}
    for username in ("admin", "it.finances"):
        user = User.objects.get(username=username)
        token = kept.get(username)
        if not token or services.authenticate_token(token) != user:
            _, token = services.issue_api_token(actor=SYSTEM, user=user, name="demo")
        tokens.append({"token": token, "username": username})
    return tokens


def load(previous: dict, data: dict) -> None:
    """Load the directory's demo data; add users and API tokens to ``data``."""
    by_code = _load_administrations()
    data["users"] = _load_agents(previous, by_code) + _load_companies(previous)
    data["api_tokens"] = _load_tokens(previous)
