"""What every printed page shares: the clinic's colours and paper, the sources line, the diary."""

from __future__ import annotations

from aftercare.content.model import Brand, Campaign, Clinic, Handout, Project

# The checkouts that come with the one-page headache diary (its own PDF).
DIARY_INDICATIONS = ("migraine",)
# Where `pipeline serve` lists a handout's sources in full (the checkout sheet prints one line).
SOURCES_PATH = "/sources/"

# Dark amber for warning callouts: not a brand colour, so that a warning never looks like a tip.
WARNING_COLOUR = "#8a4a00"


def checkout_campaign(project: Project, handout: Handout) -> Campaign | None:
    """The campaign that sends this handout home from the desk (its one-sheet checkout
    handout), or None for every other topic."""
    return next((c for c in project.campaigns.values() if c.handout == handout.id), None)


def sources_address(clinic: Clinic, handout: Handout) -> str:
    """Where the full list of a handout's sources is kept, as printed (no https://); a
    translation's page is in its language (/sources/es/<id>)."""
    language = f"{handout.language}/" if handout.language else ""
    return bare_url(clinic.email.public_base_url.rstrip("/") + SOURCES_PATH + language
                    + handout.id)


def bare_url(url: str) -> str:
    """An address as printed: without "https://", which readers need not type."""
    return url.removeprefix("https://").removeprefix("http://")


def offers_diary(campaign: Campaign) -> bool:
    """Whether a checkout for this campaign comes with the one-page headache diary."""
    return campaign.indication in DIARY_INDICATIONS


def clinic_css(brand: Brand, paper_size: str) -> str:
    """The clinic's part of the stylesheet: brand colours as custom properties, and paper size."""
    palette = {
        "primary": brand.primary,
        "accent": brand.accent,
        "text": brand.text,
        "primary-tint": tint(brand.primary, 0.08),
        "accent-tint": tint(brand.accent, 0.07),
        "warning": WARNING_COLOUR,
        "warning-tint": tint(WARNING_COLOUR, 0.08),
        "rule": tint(brand.text, 0.45),
    }
    properties = "".join(f"  --{name}: {value};\n" for name, value in palette.items())
    size = "letter" if paper_size == "Letter" else "A4"
    return f":root {{\n{properties}}}\n@page {{ size: {size}; }}\n"


def tint(colour: str, strength: float) -> str:
    """``colour`` laid over white at ``strength`` (0 to 1), as #rrggbb: the box backgrounds."""
    channels = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    mixed = (round(255 - (255 - c) * strength) for c in channels)
    return "#" + "".join(f"{c:02x}" for c in mixed)


def contrast_ratio(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two #rrggbb colours (1 to 21; text needs 4.5 or more)."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
