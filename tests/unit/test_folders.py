from __future__ import annotations

from linuxkit_swarm.folders import existing_folder_message, folder_segments


def test_segments_below_parent() -> None:
    assert folder_segments("", "a/b/c") == ["a", "a/b", "a/b/c"]
    assert folder_segments("P/Q", "a") == ["P/Q/a"]


def test_existing_middle_segment_becomes_the_parent() -> None:
    text = existing_folder_message("TERRAFORM", "Linux/linuxkit-dev", "TERRAFORM/Linux", "Spittal")
    assert "'TERRAFORM/Linux' already exists in datacenter 'Spittal'" in text
    assert "set linuxkit-swarm:parentFolder to 'TERRAFORM/Linux'" in text
    assert "linuxkit-swarm:folder to 'linuxkit-dev'" in text
    assert "pulumi import vsphere:index/folder:Folder <name> /Spittal/vm/TERRAFORM/Linux" in text


def test_whole_path_existing_asks_for_a_new_sub_folder() -> None:
    text = existing_folder_message("", "Linux/dev", "Linux/dev", "DC0")
    assert "the whole path exists" in text and "parentFolder to 'Linux/dev'" in text
