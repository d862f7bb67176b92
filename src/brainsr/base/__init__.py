"""Base layer under the stages: helpers every stage may import, which import no stage (imported downward only)."""
